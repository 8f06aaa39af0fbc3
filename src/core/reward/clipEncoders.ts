/** A CLIP model folder in the Hub layout (src/core/graphs/clipFolder.ts) opened for embedding images and texts. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadClipTokenizer, type ClipTokenizer } from '../diffusion/tokenizer';
import type { ImageRGB } from '../image/rgb';
import { OrtModel, tensorFor } from '../runtime/ortModel';
import { readPreprocess, toPixelValues, type Preprocess } from './onnxBackbone';

/** Image and text towers of one CLIP model; embeddings are `image_embeds` / `text_embeds`, not normalised. */
export interface ClipEncoders {
  readonly dir: string;
  /** Width of both embeddings (`projection_dim`). */
  readonly dim: number;
  readonly preprocess: Preprocess;
  readonly tokenizer: ClipTokenizer;
  embedImages(images: ImageRGB[]): Promise<Float32Array[]>;
  embedTexts(texts: string[]): Promise<Float32Array[]>;
  release(): Promise<void>;
}

/** Options of {@link openClipEncoders}. */
export interface OpenClipOptions {
  threads?: number;
  /** Images per run of the vision tower (default 64). */
  batch?: number;
}

/** Opens `onnx/vision_model.onnx`, `onnx/text_model.onnx`, the tokenizer and the preprocessing of a CLIP folder. */
export async function openClipEncoders(dir: string, o: OpenClipOptions = {}): Promise<ClipEncoders> {
  const file = (f: string) => {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) throw new Error(`${dir} is not a CLIP model folder: ${f} is missing (expected onnx/vision_model.onnx, onnx/text_model.onnx, a tokenizer and preprocessor_config.json)`);
    return p;
  };
  const extra = o.threads ? { intraOpNumThreads: o.threads } : {};
  const vision = await OrtModel.load(file('onnx/vision_model.onnx'), 'cpu', extra);
  const text = await OrtModel.load(file('onnx/text_model.onnx'), 'cpu', extra);
  const tokenizer = loadClipTokenizer(dir);
  const preprocess = readPreprocess(dir);
  const pixelInput = vision.input(['pixel_values']), idsInput = text.input(['input_ids']);
  const imageOut = vision.output(['image_embeds']).name, textOut = text.output(['text_embeds']).name;
  const rows = (data: Float32Array, n: number) => Array.from({ length: n }, (_, k) => data.slice((k * data.length) / n, ((k + 1) * data.length) / n));
  const batch = o.batch ?? 64;
  const embedTexts = async (texts: string[]): Promise<Float32Array[]> => {
    if (texts.length === 0) return [];
    const ids = texts.flatMap((t) => tokenizer.encode(t));
    const res = await text.run({ [idsInput.name]: tensorFor(idsInput, ids, [texts.length, tokenizer.maxLength]) });
    return rows(res[textOut].data as Float32Array, texts.length);
  };
  const embedImages = async (images: ImageRGB[]): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    for (let i = 0; i < images.length; i += batch) {
      const chunk = images.slice(i, i + batch);
      const px = toPixelValues(chunk, preprocess);
      const res = await vision.run({ [pixelInput.name]: tensorFor(pixelInput, px, [chunk.length, 3, preprocess.size, preprocess.size]) });
      out.push(...rows(res[imageOut].data as Float32Array, chunk.length));
    }
    return out;
  };
  const dim = (await embedTexts(['']))[0].length;
  return { dir, dim, preprocess, tokenizer, embedImages, embedTexts, release: async () => { await vision.release(); await text.release(); } };
}

/** Cosine similarity of two embeddings (0 when either is zero). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/**
 * A prompt-aware reward head's input: the image embedding, the prompt's text embedding and their cosine. In a
 * same-prompt comparison a linear head's text part cancels, so what the prompt adds reaches it through the cosine.
 */
export function clipRewardFeatures(image: Float32Array, text: Float32Array): Float32Array {
  const f = new Float32Array(image.length + text.length + 1);
  f.set(image, 0);
  f.set(text, image.length);
  f[image.length + text.length] = cosine(image, text);
  return f;
}
