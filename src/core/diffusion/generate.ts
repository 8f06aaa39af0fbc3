import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StableDiffusionPipeline } from './pipeline';
import { sampleDdim } from './sampler';
import type { SampleResult } from './sampleRequest';
import { RasterImage, encodePng } from '../image/png';

/** Settings of one generation job; image k uses seed + k. */
export interface GenerateOptions {
  prompt: string;
  negativePrompt?: string;
  seed: number;
  steps: number;
  guidance: number;
  eta: number;
  count: number;
  /** Images per UNet batch (each costs 2 UNet rows with guidance); 1 by default. */
  batchSize?: number;
  latentHeight?: number;
  latentWidth?: number;
  onProgress?: (p: GenerateProgress) => void;
  signal?: AbortSignal;
}

/** Progress of a generation job, after each denoising step. */
export interface GenerateProgress {
  /** Images finished so far and in all. */
  imagesDone: number;
  images: number;
  step: number;
  steps: number;
}

/** One generated image with the settings that reproduce it. */
export interface GeneratedImage {
  image: RasterImage;
  seed: number;
  /** PNG text metadata: prompt, negative_prompt, seed, steps, guidance, eta, model_id, model_hash, ... */
  metadata: Record<string, string>;
}

/** CHW float images in about [-1, 1] -> 8-bit RGB, as diffusers does: round(clamp(x/2 + 0.5, 0, 1) · 255). */
export function toRgbImages(data: Float32Array, batch: number, height: number, width: number): RasterImage[] {
  const plane = height * width;
  return Array.from({ length: batch }, (_, b) => {
    const out = new Uint8Array(plane * 3);
    for (let c = 0; c < 3; c++) {
      const base = (b * 3 + c) * plane;
      for (let i = 0; i < plane; i++) {
        const v = Math.min(1, Math.max(0, data[base + i] / 2 + 0.5));
        out[i * 3 + c] = Math.round(v * 255);
      }
    }
    return { width, height, channels: 3 as const, data: out };
  });
}

/** Generates `count` images in batches; progress after each step, cancellable between steps. */
export async function generateImages(pipe: StableDiffusionPipeline, opts: GenerateOptions, onBatch?: (r: SampleResult) => void): Promise<GeneratedImage[]> {
  const batchSize = Math.max(1, Math.min(opts.batchSize ?? 1, opts.count));
  const results: GeneratedImage[] = [];
  const common = {
    prompt: opts.prompt, negative_prompt: opts.negativePrompt ?? '', steps: String(opts.steps), guidance: String(opts.guidance),
    eta: String(opts.eta), scheduler: 'DDIM', model_id: pipe.folder.modelId, model_hash: pipe.modelHash, software: 'DDPO Studio',
  };
  for (let start = 0; start < opts.count; start += batchSize) {
    const n = Math.min(batchSize, opts.count - start);
    const r = await sampleDdim(pipe, {
      prompt: opts.prompt, negativePrompt: opts.negativePrompt, count: n, seed: opts.seed + start,
      steps: opts.steps, guidance: opts.guidance, eta: opts.eta, latentHeight: opts.latentHeight, latentWidth: opts.latentWidth,
      signal: opts.signal,
      onProgress: (p) => opts.onProgress?.({ imagesDone: start, images: opts.count, step: p.step, steps: p.steps }),
    });
    onBatch?.(r);
    opts.signal?.throwIfAborted();
    const dec = await pipe.decode(r.trajectory[r.trajectory.length - 1], n, r.latentHeight, r.latentWidth);
    toRgbImages(dec.data, n, dec.height, dec.width).forEach((image, k) => {
      const seed = r.seeds[k];
      results.push({ image, seed, metadata: { ...common, seed: String(seed), size: `${image.width}x${image.height}` } });
    });
  }
  return results;
}

/** Writes a generated image as `<outDir>/<seed>.png` with its metadata; returns the path. */
export function saveGeneratedPng(outDir: string, gen: GeneratedImage, prefix = ''): string {
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, `${prefix}${gen.seed}.png`);
  writeFileSync(path, encodePng(gen.image, gen.metadata));
  return path;
}
