import { StableDiffusionPipeline } from './pipeline';
import { sampleDdim } from './sampler';
import type { SampleResult } from './sampleRequest';
import type { RasterImage } from '../image/png';
import { DefectReport, imageDefect } from './outputChecks';

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
  /** Hears a problem a person can act on (an image with no picture in it, naming the likely setting). */
  onWarning?: (message: string) => void;
  /** Collects the defects of a job made of several calls, which finishes it; else each call reports to onWarning. */
  defects?: DefectReport;
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
  /** The final latent `[C, h, w]` the image was decoded from (scaled as the UNet sees it). */
  latent: { shape: number[]; data: Float32Array };
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
  const results: GeneratedImage[] = [];
  for await (const batch of generateBatches(pipe, opts, onBatch)) results.push(...batch);
  return results;
}

/**
 * Generates `count` images one batch at a time, yielding each batch as soon as it is decoded; batches whose seeds
 * `skip` says are done are not sampled. Warns (opts.onWarning) about images with no picture in them.
 */
export async function* generateBatches(
  pipe: StableDiffusionPipeline, opts: GenerateOptions, onBatch?: (r: SampleResult) => void, skip?: (seeds: number[]) => boolean,
): AsyncGenerator<GeneratedImage[]> {
  const batchSize = Math.max(1, Math.min(opts.batchSize ?? 1, opts.count));
  const common = generationMetadata(pipe, opts);
  const defects = opts.defects ?? new DefectReport(opts, (m) => opts.onWarning?.(m));
  for (let start = 0; start < opts.count; start += batchSize) {
    const n = Math.min(batchSize, opts.count - start);
    if (skip?.(Array.from({ length: n }, (_, k) => opts.seed + start + k))) continue;
    const r = await sampleDdim(pipe, {
      prompt: opts.prompt, negativePrompt: opts.negativePrompt, count: n, seed: opts.seed + start,
      steps: opts.steps, guidance: opts.guidance, eta: opts.eta, latentHeight: opts.latentHeight, latentWidth: opts.latentWidth,
      signal: opts.signal,
      onProgress: (p) => opts.onProgress?.({ imagesDone: start, images: opts.count, step: p.step, steps: p.steps }),
    });
    onBatch?.(r);
    opts.signal?.throwIfAborted();
    const dec = await pipe.decode(r.trajectory[r.trajectory.length - 1], n, r.latentHeight, r.latentWidth);
    const perImage = r.channels * r.latentHeight * r.latentWidth;
    yield toRgbImages(dec.data, n, dec.height, dec.width).map((image, k) => {
      const seed = r.seeds[k];
      defects.add(seed, imageDefect(r.trajectory, k, perImage, image));
      const latent = { shape: [r.channels, r.latentHeight, r.latentWidth], data: r.trajectory[r.trajectory.length - 1].slice(k * perImage, (k + 1) * perImage) };
      return { image, seed, metadata: { ...common, seed: String(seed), size: `${image.width}x${image.height}` }, latent };
    });
  }
  if (!opts.defects) defects.finish();
}

/** The PNG text every image of a job shares (prompt and settings); each image adds its seed and size. */
export function generationMetadata(pipe: StableDiffusionPipeline, opts: GenerateOptions): Record<string, string> {
  return {
    prompt: opts.prompt, negative_prompt: opts.negativePrompt ?? '', steps: String(opts.steps), guidance: String(opts.guidance),
    eta: String(opts.eta), scheduler: 'DDIM', model_id: pipe.folder.modelId, model_hash: pipe.modelHash, software: 'DDPO Studio',
  };
}
