/** Generates rating pairs into an experiment folder (worker side: loads onnxruntime through the pipeline). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateImages } from '../diffusion/generate';
import type { StableDiffusionPipeline } from '../diffusion/pipeline';
import { EXPERIMENT_FILE, parseExperiment, type Experiment } from '../experiment/schema';
import { atomicWriteFile, resolveInside } from '../fsutil';
import { encodePng } from '../image/png';
import { listPairs, PAIR_FILE, planPairs, type StoredPair } from './pairs';

/** Reads `<dir>/experiment.json`. */
export function readExperimentFile(experimentDir: string): Experiment {
  const file = path.join(experimentDir, EXPERIMENT_FILE);
  return parseExperiment(fs.readFileSync(file, 'utf8'), file);
}

/** Latent side for the experiment's image size, or the model's default when it does not divide. */
export async function latentSizeFor(pipe: StableDiffusionPipeline, imageSize: number): Promise<number> {
  const f = await pipe.vaeScaleFactor();
  const side = imageSize / f;
  return Number.isInteger(side) && side >= 8 ? side : pipe.defaultLatentSize;
}

/** Generates `count` pairs (two seeds of one prompt each); `onPair` hears each as soon as it is on disk. */
export async function generatePairsInto(experimentDir: string, pipe: StableDiffusionPipeline, count: number, o: { signal?: AbortSignal; onPair?: (p: StoredPair, done: number) => void } = {}): Promise<StoredPair[]> {
  const exp = readExperimentFile(experimentDir);
  const s = exp.settings;
  const latent = await latentSizeFor(pipe, s.imageSize);
  const out: StoredPair[] = [];
  for (const plan of planPairs(exp.prompts, listPairs(experimentDir), count, s.seed)) {
    o.signal?.throwIfAborted();
    const images = await generateImages(pipe, { prompt: plan.prompt, seed: plan.seeds[0], steps: s.steps, guidance: s.guidanceScale, eta: 1, count: 2, batchSize: 2, latentHeight: latent, latentWidth: latent, signal: o.signal });
    const dir = resolveInside(experimentDir, path.dirname(plan.a));
    await fs.promises.mkdir(dir, { recursive: true });
    await atomicWriteFile(resolveInside(experimentDir, plan.a), encodePng(images[0].image, images[0].metadata));
    await atomicWriteFile(resolveInside(experimentDir, plan.b), encodePng(images[1].image, images[1].metadata));
    const pair: StoredPair = { ...plan, createdAt: new Date().toISOString() };
    await atomicWriteFile(path.join(dir, PAIR_FILE), JSON.stringify(pair, null, 1) + '\n');
    out.push(pair);
    o.onPair?.(pair, out.length);
  }
  return out;
}
