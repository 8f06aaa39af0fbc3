/** A folder of generated images, one `<seed>.png` each: written as they are made, resumed after an interruption. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StableDiffusionPipeline } from './pipeline';
import { GenerateOptions, generateBatches, generationMetadata } from './generate';
import { encodePng, readPngText } from '../image/png';
import { atomicWriteFile } from '../fsutil';

/** The most images one job writes into a folder. */
export const MAX_FOLDER_IMAGES = 10_000;

/** What a job did to its folder. */
export interface FolderResult {
  /** Images already there with the same prompt, seed and settings, left as they were. */
  kept: number;
  written: number;
}

/** Hooks of {@link generateIntoFolder}. */
export interface FolderHooks {
  /** Before generating: how many images of an earlier run are kept. */
  onKept?: (kept: number) => void;
  /** After each image is on disk. */
  onSaved?: (file: string) => void;
}

/**
 * Generates `opts.count` images into `outDir` as `<seed>.png`, each written atomically as soon as its batch is
 * decoded, so an interrupted job keeps what it made. Images already there with the same prompt, seed and settings
 * (their PNG text) are kept and not made again. Throws before generating anything when a file of one of the seeds
 * was made with other settings, so nothing is overwritten.
 */
export async function generateIntoFolder(pipe: StableDiffusionPipeline, opts: GenerateOptions, outDir: string, hooks: FolderHooks = {}): Promise<FolderResult> {
  if (opts.count > MAX_FOLDER_IMAGES) throw new Error(`${opts.count} images is more than ${MAX_FOLDER_IMAGES.toLocaleString('en-US')} for one folder; split the job (the next one starting at seed ${opts.seed + MAX_FOLDER_IMAGES})`);
  fs.mkdirSync(outDir, { recursive: true });
  const kept = await keptSeeds(pipe, opts, outDir);
  hooks.onKept?.(kept.size);
  let written = 0;
  for await (const batch of generateBatches(pipe, opts, undefined, (seeds) => seeds.every((s) => kept.has(s)))) {
    for (const g of batch) {
      if (kept.has(g.seed)) continue;
      const file = imageFile(outDir, g.seed);
      await atomicWriteFile(file, encodePng(g.image, g.metadata));
      written++;
      hooks.onSaved?.(file);
    }
  }
  return { kept: kept.size, written };
}

function imageFile(outDir: string, seed: number): string {
  return path.join(outDir, `${seed}.png`);
}

// Seeds whose image is already in the folder with this job's settings; a complete image of other settings is an error.
async function keptSeeds(pipe: StableDiffusionPipeline, opts: GenerateOptions, outDir: string): Promise<Set<number>> {
  const factor = await pipe.vaeScaleFactor();
  const size = `${(opts.latentWidth ?? pipe.defaultLatentSize) * factor}x${(opts.latentHeight ?? pipe.defaultLatentSize) * factor}`;
  const common = generationMetadata(pipe, opts);
  const kept = new Set<number>();
  for (let seed = opts.seed; seed < opts.seed + opts.count; seed++) {
    const file = imageFile(outDir, seed);
    if (!fs.existsSync(file)) continue;
    const text = readPngText(fs.readFileSync(file));
    // an incomplete file (from a writer without atomic renames) is made again
    if (!text) continue;
    const want: Record<string, string> = { ...common, seed: String(seed), size };
    const differs = Object.keys(want).find((k) => text[k] !== want[k]);
    if (differs) {
      throw new Error(`${file} was made with other settings (${differs} ${JSON.stringify(text[differs] ?? '(none)')}, this job's is ${JSON.stringify(want[differs])}); ` +
        'choose another output folder, or move the old images away');
    }
    kept.add(seed);
  }
  return kept;
}
