/** Whole-image generation speed: text encoding, denoising and VAE decode timed together through the pipeline. */
import { StableDiffusionPipeline } from '../diffusion/pipeline';
import { generateImages } from '../diffusion/generate';
import { unetRows } from '../diffusion/sampleRequest';

/** Settings of a generation benchmark. */
export interface BenchOptions {
  steps: number;
  guidance: number;
  images: number;
  latentHeight?: number;
  latentWidth?: number;
  signal?: AbortSignal;
}

/** Measured generation speed. */
export interface BenchResult {
  /** UNet rows per second (one row = one latent at one step; guidance doubles them). */
  unetEvalsPerSec: number;
  imagesPerSec: number;
  secondsPerImage: number;
  images: number;
  steps: number;
  latentSize: string;
}

/** Times whole-image generation (text encoding, denoising, VAE decode) after one warm-up image. */
export async function benchGenerate(pipe: StableDiffusionPipeline, opts: BenchOptions): Promise<BenchResult> {
  const base = { prompt: 'a photo of a cat', seed: 1, eta: 1, guidance: opts.guidance, latentHeight: opts.latentHeight, latentWidth: opts.latentWidth, signal: opts.signal };
  await generateImages(pipe, { ...base, steps: 2, count: 1 });
  const t0 = process.hrtime.bigint();
  await generateImages(pipe, { ...base, steps: opts.steps, count: opts.images });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const rows = unetRows(opts.images, opts.guidance) * opts.steps;
  const h = opts.latentHeight ?? pipe.defaultLatentSize;
  const w = opts.latentWidth ?? pipe.defaultLatentSize;
  return {
    unetEvalsPerSec: rows / seconds, imagesPerSec: opts.images / seconds, secondsPerImage: seconds / opts.images,
    images: opts.images, steps: opts.steps, latentSize: `${h}x${w}`,
  };
}
