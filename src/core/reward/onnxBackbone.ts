import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { Backbone } from './backbone';
import type { ImageRGB } from '../image/rgb';

/** CLIP's published preprocessing constants (used when the model folder does not say otherwise). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** How images are turned into pixel_values. */
export interface Preprocess {
  size: number;
  mean: number[];
  std: number[];
}

/** Read image size and normalisation from preprocessor_config.json / config.json in a model folder (CLIP defaults otherwise). */
export function readPreprocess(dir: string): Preprocess {
  const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) : {});
  const pre = read('preprocessor_config.json');
  const cfg = read('config.json');
  const sizeOf = (v: unknown): number | undefined => (typeof v === 'number' ? v : v && typeof v === 'object' ? ((v as Record<string, number>).height ?? (v as Record<string, number>).shortest_edge) : undefined);
  const size = sizeOf(pre.crop_size) ?? sizeOf(pre.size) ?? cfg.image_size ?? cfg.vision_config?.image_size ?? 224;
  return { size, mean: pre.image_mean ?? CLIP_MEAN, std: pre.image_std ?? CLIP_STD };
}

/** CLIP-style preprocessing: bilinear resize of the short side to `size`, centre crop, scale to [0,1], normalise; NCHW. */
export function toPixelValues(images: ImageRGB[], p: Preprocess): Float32Array {
  const s = p.size, plane = s * s;
  const out = new Float32Array(images.length * 3 * plane);
  images.forEach((img, n) => {
    const scale = s / Math.min(img.width, img.height);
    const rw = img.width * scale, rh = img.height * scale;
    const ox = (rw - s) / 2, oy = (rh - s) / 2;
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      // Sample the source at the centre of the output pixel (half-pixel convention, as PIL/torchvision do).
      const sx = Math.min(img.width - 1, Math.max(0, (x + ox + 0.5) / scale - 0.5));
      const sy = Math.min(img.height - 1, Math.max(0, (y + oy + 0.5) / scale - 0.5));
      const x0 = Math.floor(sx), y0 = Math.floor(sy), x1 = Math.min(img.width - 1, x0 + 1), y1 = Math.min(img.height - 1, y0 + 1);
      const fx = sx - x0, fy = sy - y0;
      for (let c = 0; c < 3; c++) {
        const at = (xx: number, yy: number) => img.data[(yy * img.width + xx) * 3 + c];
        const v = (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) + (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
        out[n * 3 * plane + c * plane + y * s + x] = (v / 255 - p.mean[c]) / p.std[c];
      }
    }
  });
  return out;
}

/**
 * Load any ONNX image encoder `pixel_values -> embeddings` (a CLIP vision tower, for instance) from a model file
 * or a folder holding model.onnx. Uses output image_embeds, else pooler_output, else the first output
 * (taking the first token when it is a sequence).
 */
export async function loadOnnxBackbone(modelPathOrDir: string): Promise<Backbone & { runPixels(pixels: Float32Array, batch: number): Promise<Float32Array[]> }> {
  const isDir = fs.existsSync(modelPathOrDir) && fs.statSync(modelPathOrDir).isDirectory();
  const file = isDir ? path.join(modelPathOrDir, 'model.onnx') : modelPathOrDir;
  if (!fs.existsSync(file)) throw new Error(`image encoder not found: ${file} (give a .onnx file or a folder with model.onnx)`);
  const pre = readPreprocess(path.dirname(file));
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(file);
  const input = session.inputNames.includes('pixel_values') ? 'pixel_values' : session.inputNames.length === 1 ? session.inputNames[0] : null;
  if (!input) throw new Error(`${file}: cannot tell which input takes images (inputs: ${session.inputNames.join(', ')}); expected one named pixel_values`);
  const output = ['image_embeds', 'pooler_output'].find((n) => session.outputNames.includes(n)) ?? session.outputNames[0];
  const id = 'onnx:' + createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16);
  let dim = 0;
  const runPixels = async (pixels: Float32Array, batch: number): Promise<Float32Array[]> => {
    const res = await session.run({ [input]: new ort.Tensor('float32', pixels, [batch, 3, pre.size, pre.size]) });
    const t = res[output];
    const dims = t.dims as number[];
    const data = t.data as Float32Array;
    const per = data.length / batch;
    const width = dims.length === 3 ? dims[2] : per; // [batch, tokens, width]: keep token 0 (CLS)
    dim = width;
    return Array.from({ length: batch }, (_, n) => data.slice(n * per, n * per + width));
  };
  // Probe once so `dim` is known before the first real call.
  await runPixels(new Float32Array(3 * pre.size * pre.size), 1);
  return {
    id,
    get dim() { return dim; },
    embed: async (images) => (images.length ? runPixels(toPixelValues(images, pre), images.length) : []),
    runPixels,
    dispose: async () => { await session.release(); },
  };
}
