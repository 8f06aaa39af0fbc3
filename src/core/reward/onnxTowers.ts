/** The image and text towers of an ONNX backbone: which inputs and outputs play which part, batching, and the checks on opening. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ClipTokenizer } from '../diffusion/tokenizer';
import { readFloat32, tensorFor, type IoSpec, type OrtModel } from '../runtime/ortModel';
import type * as ort from 'onnxruntime-node';

/** An image tower: NCHW pixel values -> one embedding per image. */
export interface ImageTower {
  readonly model: OrtModel;
  /** Width of its embeddings. */
  readonly dim: number;
  /** Side of the square images it takes. */
  readonly size: number;
  run(pixels: Float32Array, count: number): Promise<Float32Array[]>;
}

/** A text tower: token id rows -> one embedding per row; `embed` tokenizes prompts first. */
export interface OnnxTextTower {
  readonly model: OrtModel;
  readonly dim: number;
  readonly tokenizer: ClipTokenizer;
  embed(prompts: string[]): Promise<Float32Array[]>;
  runIds(rows: number[][]): Promise<Float32Array[]>;
}

const rowsOf = (data: Float32Array, count: number, width: number, stride = width): Float32Array[] =>
  Array.from({ length: count }, (_, n) => data.slice(n * stride, n * stride + width));

// Inputs of a model that embeds images, texts, or both (a combined CLIP graph takes all of them).
function roles(m: OrtModel) {
  const pixels = m.inputs.find((s) => s.name === 'pixel_values') ?? (m.inputs.length === 1 && m.inputs[0].shape.length === 4 ? m.inputs[0] : undefined);
  const ids = m.inputs.find((s) => s.name === 'input_ids');
  const mask = m.inputs.find((s) => s.name === 'attention_mask');
  return { pixels, ids, mask };
}

/** True when `m` also embeds token ids (a combined CLIP graph, or a text tower). */
export function takesTokenIds(m: OrtModel): boolean {
  return roles(m).ids !== undefined;
}

const fixedDim = (spec: IoSpec | undefined, axis: number): number | undefined => (typeof spec?.shape[axis] === 'number' ? (spec.shape[axis] as number) : undefined);

// How many rows of the other tower's input a combined graph needs next to `count` rows of one: 1, unless both batch axes
// share one symbolic name (optimum names them apart, text_batch_size / image_batch_size; a graph may not).
function otherRows(m: OrtModel, count: number): number {
  const { pixels, ids } = roles(m);
  return typeof pixels?.shape[0] === 'string' && pixels.shape[0] === ids?.shape[0] ? count : 1;
}

// Feeds for a row of token ids, with its attention mask when the model takes one: 1 up to the first end token, 0 on the padding after it.
function idFeeds(m: OrtModel, rows: number[][], eos: number | undefined): Record<string, ort.Tensor> {
  const { ids, mask } = roles(m);
  const n = rows.length, len = rows[0].length;
  const feeds: Record<string, ort.Tensor> = { [ids!.name]: tensorFor(ids!, rows.flat(), [n, len]) };
  if (mask) {
    feeds[mask.name] = tensorFor(mask, rows.flatMap((r) => {
      const end = eos === undefined ? -1 : r.indexOf(eos);
      return r.map((_, i) => (end < 0 || i <= end ? 1 : 0));
    }), [n, len]);
  }
  return feeds;
}

/**
 * The image tower of `m`: its `pixel_values` input (or its only 4-D input) and the output `image_embeds`, else
 * `pooler_output`, else its first output (the first token of a sequence). A combined graph also gets one short row of
 * token ids, whose text embedding is not read. `batch` images per run, or the model's fixed batch (the last run padded).
 */
export async function imageTower(m: OrtModel, size: number, batch: number, tokenizer?: ClipTokenizer): Promise<ImageTower> {
  const { pixels, ids } = roles(m);
  if (!pixels) {
    throw new Error(`${m.path} takes ${m.inputs.map((s) => s.name).join(', ')}, not images (pixel_values): ${ids ? 'a text encoder alone cannot score images; give the folder with the image encoder too' : 'it is not an image encoder'}`);
  }
  const named = m.outputs.find((s) => s.name === 'image_embeds') ?? m.outputs.find((s) => s.name === 'pooler_output');
  if (!named && ids) throw new Error(`${m.path} has no image_embeds output (outputs: ${m.outputs.map((s) => s.name).join(', ')}); export the CLIP model with its projections`);
  const out = named ?? m.outputs[0];
  const step = fixedDim(pixels, 0) ?? batch;
  const dummyRow = tokenizer ? [tokenizer.bosId, tokenizer.eosId] : [0];
  const run = async (px: Float32Array, count: number): Promise<Float32Array[]> => {
    const per = 3 * size * size, result: Float32Array[] = [];
    for (let i = 0; i < count; i += step) {
      const n = Math.min(step, count - i), fed = fixedDim(pixels, 0) ?? n;
      const chunk = new Float32Array(fed * per);
      chunk.set(px.subarray(i * per, (i + n) * per));
      const feeds = { [pixels.name]: tensorFor(pixels, chunk, [fed, 3, size, size]), ...(ids ? idFeeds(m, new Array(otherRows(m, fed)).fill(dummyRow), tokenizer?.eosId) : {}) };
      const t = (await m.run(feeds))[out.name];
      const data = await readFloat32(t);
      const width = t.dims[t.dims.length - 1];
      // [batch, tokens, width]: the first (class) token
      result.push(...rowsOf(data, n, width, data.length / fed));
    }
    return result;
  };
  const dim = fixedDim(out, out.shape.length - 1) ?? (await run(new Float32Array(3 * size * size), 1))[0].length;
  return { model: m, dim, size, run };
}

/** The text tower's vocabulary size as the folder's config.json states it (`text_config.vocab_size`, or `vocab_size` of a text model's config). */
function configVocabSize(dir: string): number | undefined {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) return undefined;
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown> & { text_config?: { vocab_size?: unknown } };
  const v = cfg.text_config?.vocab_size ?? (String(cfg.model_type ?? '').includes('text') ? cfg.vocab_size : undefined);
  return typeof v === 'number' ? v : undefined;
}

/**
 * The text tower of `m` with its tokenizer: output `text_embeds`, else `pooler_output` (the end token's hidden state).
 * Prompts are padded to the longest in a batch (a causal text model's end token does not see the padding), or to the
 * model's fixed length. Checks that the tokenizer's ids fit the model's vocabulary by config.json and by one run.
 */
export async function textTower(m: OrtModel, tokenizer: ClipTokenizer, o: { dir: string; tokenizerFile: string; size: number; onTruncated?: (line: string) => void }): Promise<OnnxTextTower> {
  const { ids, pixels } = roles(m);
  if (!ids) throw new Error(`${m.path} has no input_ids input (inputs: ${m.inputs.map((s) => s.name).join(', ')}); it is not a CLIP text encoder`);
  const out = m.outputs.find((s) => s.name === 'text_embeds') ?? m.outputs.find((s) => s.name === 'pooler_output');
  if (!out) throw new Error(`${m.path} has no text_embeds or pooler_output output (outputs: ${m.outputs.map((s) => s.name).join(', ')}); export the CLIP text model with its projection`);
  const mismatch = (have: string) => new Error(`the tokenizer ${o.tokenizerFile} gives token ids up to ${tokenizer.vocabSize - 1}, but ${m.path} ${have}: ` +
    'the tokenizer and the text model do not belong together; download the repo again, or put the tokenizer files of the same model beside it');
  const vocab = configVocabSize(o.dir);
  if (vocab !== undefined && tokenizer.vocabSize > vocab) throw mismatch(`embeds ${vocab} tokens (config.json vocab_size)`);
  const fixedLen = fixedDim(ids, 1);
  const blank = (n: number) => {
    const k = otherRows(m, n);
    return pixels ? { [pixels.name]: tensorFor(pixels, new Float32Array(k * 3 * o.size * o.size), [k, 3, o.size, o.size]) } : {};
  };
  const runIds = async (rows: number[][]): Promise<Float32Array[]> => {
    const result: Float32Array[] = [];
    for (let i = 0; i < rows.length; i += 64) {
      const chunk = rows.slice(i, i + 64);
      const t = (await m.run({ ...idFeeds(m, chunk, tokenizer.eosId), ...blank(chunk.length) }))[out.name];
      const data = await readFloat32(t);
      result.push(...rowsOf(data, chunk.length, t.dims[t.dims.length - 1]));
    }
    return result;
  };
  const warned = new Set<string>();
  const embed = async (prompts: string[]): Promise<Float32Array[]> => {
    if (prompts.length === 0) return [];
    const rows = prompts.map((p) => {
      const { ids: row, dropped, droppedFrom } = tokenizer.encodeCounted(p);
      if (dropped && !warned.has(p)) {
        warned.add(p);
        o.onTruncated?.(`the prompt "${p.length > 40 ? `${p.slice(0, 40)}…` : p}" is longer than the reward backbone's text tower reads: the last ${dropped} tokens, from "${droppedFrom}", are not seen`);
      }
      return row;
    });
    const len = fixedLen ?? Math.max(...rows.map((r) => r.indexOf(tokenizer.eosId) + 1));
    return runIds(rows.map((r) => (len <= r.length ? r.slice(0, len) : [...r, ...new Array(len - r.length).fill(tokenizer.padId)])));
  };
  let dim: number;
  try {
    const probe = [tokenizer.bosId, tokenizer.vocabSize - 1, tokenizer.eosId];
    dim = (await runIds([fixedLen ? [...probe, ...new Array(Math.max(0, fixedLen - 3)).fill(tokenizer.padId)].slice(0, fixedLen) : probe]))[0].length;
  } catch (e) {
    if (/out of (data )?bounds|out of range|indices/i.test((e as Error).message)) throw mismatch('cannot embed it');
    throw e;
  }
  return { model: m, dim, tokenizer, embed, runIds };
}
