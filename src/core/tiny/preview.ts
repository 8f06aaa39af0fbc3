/** Samples a model folder for a list of prompts and tiles the images into one PNG grid (rows: prompts, columns: seeds). */
import { StableDiffusionPipeline } from '../diffusion/pipeline';
import { sampleDdim } from '../diffusion/sampler';
import { toRgbImages } from '../diffusion/generate';
import { RasterImage } from '../image/png';

/** Sampling settings for {@link sampleImages}. */
export interface PreviewOptions {
  seeds: number[];
  steps?: number;
  guidance?: number;
  eta?: number;
}

/** Generates one image per (prompt, seed), prompts outermost; DDIM with `steps` (default 20) and guidance (default 5). */
export async function sampleImages(pipe: StableDiffusionPipeline, prompts: string[], o: PreviewOptions): Promise<RasterImage[]> {
  const out: RasterImage[] = [];
  for (const prompt of prompts) {
    // every seed of a prompt in one batch: image k uses seed seeds[0] + k, so seeds must be consecutive
    const r = await sampleDdim(pipe, { prompt, count: o.seeds.length, seed: o.seeds[0], steps: o.steps ?? 20, guidance: o.guidance ?? 5, eta: o.eta ?? 0 });
    const dec = await pipe.decode(r.trajectory[r.trajectory.length - 1], r.count, r.latentHeight, r.latentWidth);
    out.push(...toRgbImages(dec.data, r.count, dec.height, dec.width));
  }
  return out;
}

/** Tiles equally sized RGB images into `cols` columns, each scaled up `zoom`x (nearest) with a 2 px gap. */
export function tileImages(images: RasterImage[], cols: number, zoom = 1): RasterImage {
  const w = images[0].width * zoom, h = images[0].height * zoom, gap = 2;
  const rows = Math.ceil(images.length / cols);
  const W = cols * (w + gap) + gap, H = rows * (h + gap) + gap;
  const data = new Uint8Array(W * H * 3).fill(128);
  images.forEach((img, k) => {
    const ox = gap + (k % cols) * (w + gap), oy = gap + Math.floor(k / cols) * (h + gap);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const s = (Math.floor(y / zoom) * img.width + Math.floor(x / zoom)) * img.channels;
      const d = ((oy + y) * W + ox + x) * 3;
      for (let c = 0; c < 3; c++) data[d + c] = img.data[s + c];
    }
  });
  return { width: W, height: H, channels: 3, data };
}
