/** ONNX reward backbones: a CLIP-family folder (src/core/models/backboneFolder.ts) opened as images -> embeddings and prompts -> embeddings. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { Backbone } from './backbone';
import { describeBackboneRef } from './backboneRef';
import { imageTower, takesTokenIds, textTower, type ImageTower, type OnnxTextTower } from './onnxTowers';
import { loadClipTokenizer, type ClipTokenizer } from '../diffusion/tokenizer';
import type { RewardBackboneRef } from '../experiment/schema';
import type { ImageRGB } from '../image/rgb';
import { resampleFilter, resizeCropped, type ResampleFilter } from '../image/resize';
import { inspectBackboneFolder, type BackboneFiles } from '../models/backboneFolder';
import { OrtModel } from '../runtime/ortModel';
import { CPU_ONLY, type SessionProviders } from '../runtime/sessionProviders';

/** CLIP's published preprocessing constants (used when the model folder does not say otherwise). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** How images are turned into pixel_values. */
export interface Preprocess {
  /** Side of the square crop the model takes. */
  size: number;
  mean: number[];
  std: number[];
  /** The short side is resized to this before the centre crop (default `size`). */
  shortEdge?: number;
  /** Default bicubic, as CLIP's image processor. */
  resample?: ResampleFilter;
}

/** Read image size and normalisation from preprocessor_config.json / config.json in a model folder (CLIP defaults otherwise). */
export function readPreprocess(dir: string): Preprocess {
  const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) : {});
  const pre = read('preprocessor_config.json');
  const cfg = read('config.json');
  const sizeOf = (v: unknown): number | undefined => (typeof v === 'number' ? v : v && typeof v === 'object' ? ((v as Record<string, number>).height ?? (v as Record<string, number>).shortest_edge) : undefined);
  const size = sizeOf(pre.crop_size) ?? sizeOf(pre.size) ?? cfg.image_size ?? cfg.vision_config?.image_size ?? 224;
  return { size, mean: pre.image_mean ?? CLIP_MEAN, std: pre.image_std ?? CLIP_STD, shortEdge: sizeOf(pre.size) ?? size, resample: resampleFilter(pre.resample) };
}

/**
 * Names what {@link toPixelValues} computes: part of every backbone's id with the preprocessing it reads, so embeddings
 * cached and heads trained under another way of making pixels are never taken for this one's. Change it whenever
 * toPixelValues changes its output.
 */
export const PIXELS_METHOD = 'short-edge-resize-antialiased-centre-crop-v2';

/**
 * CLIP's image processor: resize the short side to `shortEdge` (PIL's filter, antialiased), centre crop `size`, scale
 * to [0,1], normalise; NCHW.
 */
export function toPixelValues(images: ImageRGB[], p: Preprocess): Float32Array {
  const s = p.size, plane = s * s;
  const edge = Math.max(s, p.shortEdge ?? s);
  const out = new Float32Array(images.length * 3 * plane);
  images.forEach((img, n) => {
    // transformers' sizes: the long side scaled and truncated, the crop offset floored
    const short = Math.min(img.width, img.height), long = Math.max(img.width, img.height);
    const scaledLong = Math.max(edge, Math.floor((long * edge) / short));
    const [w, h] = img.width <= img.height ? [edge, scaledLong] : [scaledLong, edge];
    const crop = resizeCropped(img, w, h, { left: (w - s) >> 1, top: (h - s) >> 1, width: s, height: s }, p.resample ?? 'bicubic');
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) out[n * 3 * plane + c * plane + i] = (crop.data[i * 3 + c] / 255 - p.mean[c]) / p.std[c];
    }
  });
  return out;
}

/** Options of {@link loadOnnxBackbone}. */
export interface OnnxBackboneOptions {
  /** Providers its sessions try, best first (the job's, so it runs where the policy runs); default CPU. */
  providers?: SessionProviders;
  /** Images per run of the image tower (default 16). */
  batch?: number;
  /** Where it was opened from (recorded with heads trained on it). */
  source?: RewardBackboneRef;
  /** Hears, once per opening, why it gives an image-only reward, and prompts its text tower cuts. */
  onLog?: (line: string) => void;
}

/** An ONNX backbone, with direct access to its towers (tests feed oracle pixels and token ids through them). */
export interface OnnxBackbone extends Backbone {
  runPixels(pixels: Float32Array, batch: number): Promise<Float32Array[]>;
  readonly textTower?: OnnxTextTower;
}

/**
 * Opens a backbone folder (or an ONNX image encoder file): its image tower, and its text tower when it has one with a
 * tokenizer whose embeddings share the images' width; otherwise the reward is image-only, which `onLog` hears once.
 * Ids: `onnx:` (image only) or `clip:` (with text) and a hash of every file it reads and of the preprocessing it
 * applies ({@link PIXELS_METHOD} and the settings readPreprocess found).
 */
export async function loadOnnxBackbone(modelPathOrDir: string, o: OnnxBackboneOptions = {}): Promise<OnnxBackbone> {
  const files = inspectBackboneFolder(modelPathOrDir);
  const providers = o.providers ?? CPU_ONLY;
  const pre = readPreprocess(files.dir);
  const imageModel = await OrtModel.open(files.image, providers);
  const opened: OrtModel[] = [imageModel];
  try {
    const tokenizer = files.tokenizerDir ? loadClipTokenizer(files.tokenizerDir) : undefined;
    const image = await imageTower(imageModel, pre.size, o.batch ?? 16, tokenizer);
    const textModel = files.text ? await OrtModel.open(files.text, providers) : takesTokenIds(imageModel) ? imageModel : undefined;
    if (textModel && textModel !== imageModel) opened.push(textModel);
    const text = await openText(files, textModel, tokenizer, image, o);
    if (!text && textModel && textModel !== imageModel) await opened.pop()!.release();
    const name = o.source ? describeBackboneRef(o.source) : path.basename(files.dir);
    const readsFiles = identityFiles(files, text !== undefined);
    return {
      id: `${text ? 'clip' : 'onnx'}:${hashFiles(readsFiles, !files.plain || !!text, JSON.stringify({ pixels: PIXELS_METHOD, ...pre }))}`,
      label: `${name} (${text ? 'image + text' : 'image only'})`,
      source: o.source ?? { id: name, path: files.plain ? path.resolve(modelPathOrDir) : files.dir },
      provider: imageModel.ep,
      dim: image.dim,
      embed: async (images) => (images.length ? image.run(toPixelValues(images, pre), images.length) : []),
      runPixels: (pixels, n) => image.run(pixels, n),
      text: text && { embed: (prompts) => text.embed(prompts) },
      textTower: text,
      dispose: async () => { for (const m of opened) await m.release(); },
    };
  } catch (e) {
    for (const m of opened) await m.release();
    throw e;
  }
}

// The text tower, or undefined (said once through onLog) when the folder has none usable.
async function openText(files: BackboneFiles, m: OrtModel | undefined, tokenizer: ClipTokenizer | undefined, image: ImageTower, o: OnnxBackboneOptions): Promise<OnnxTextTower | undefined> {
  const imageOnly = (why: string) => { o.onLog?.(`reward backbone ${files.dir}: ${why}; the reward sees images only, not prompts`); return undefined; };
  if (!m) return imageOnly('no text tower (onnx/text_model.onnx)');
  if (!tokenizer) return imageOnly(`${path.relative(files.dir, m.path)} has no tokenizer beside it (tokenizer.json, or vocab.json + merges.txt)`);
  const tokenizerFile = path.join(files.dir, fs.existsSync(path.join(files.dir, 'tokenizer.json')) && !fs.existsSync(path.join(files.dir, 'vocab.json')) ? 'tokenizer.json' : 'vocab.json');
  const text = await textTower(m, tokenizer, { dir: files.dir, tokenizerFile, size: image.size, onTruncated: o.onLog });
  if (text.dim !== image.dim) return imageOnly(`its text embeddings are ${text.dim} wide and its image embeddings ${image.dim}, so they do not share one space`);
  return text;
}

// Everything the embeddings depend on: the towers (with external data), and for non-plain layouts the tokenizer and preprocessing.
function identityFiles(f: BackboneFiles, withText: boolean): string[] {
  const withData = (file: string) => {
    const dir = path.dirname(file), base = path.basename(file);
    return [file, ...fs.readdirSync(dir).filter((n) => n !== base && n.startsWith(base) && /^(_data|\.data)/.test(n.slice(base.length))).sort().map((n) => path.join(dir, n))];
  };
  const towers = [...withData(f.image), ...(withText && f.text ? withData(f.text) : [])];
  if (f.plain && !withText) return towers;
  const extra = ['preprocessor_config.json', ...(withText ? ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json'] : [])];
  return [...towers, ...extra.map((n) => path.join(f.dir, n)).filter((p) => fs.existsSync(p))];
}

const hashes = new Map<string, string>();

// sha256 of `also` and the files' contents (with their names when `named`), 16 hex chars; remembered per size and
// mtime, as weights are large.
function hashFiles(files: string[], named: boolean, also: string): string {
  const key = `${named}|${also}|` + files.map((f) => { const st = fs.statSync(f); return `${f}:${st.size}:${st.mtimeMs}`; }).join('|');
  const known = hashes.get(key);
  if (known) return known;
  const h = createHash('sha256');
  h.update(`${also}\n`);
  const buf = Buffer.alloc(1 << 22);
  for (const f of files) {
    if (named) h.update(`${path.basename(f)}\n`);
    const fd = fs.openSync(f, 'r');
    try {
      for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
    } finally { fs.closeSync(fd); }
  }
  const hex = h.digest('hex').slice(0, 16);
  hashes.set(key, hex);
  return hex;
}
