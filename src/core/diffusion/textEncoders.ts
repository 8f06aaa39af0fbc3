/**
 * The text side of a pipeline: prompts to the embeddings the UNet takes. SD 1.x/2.x: one CLIP encoder's last hidden
 * state. SDXL: both encoders' penultimate hidden states side by side, and the second's pooled projection.
 */
import type { ClipTokenizer } from './tokenizer';
import { IoSpec, OrtModel, tensorFor, tensorToFloat32 } from '../runtime/ortModel';
import { gatherRows, planRowChunks } from './rowChunks';

/** Text embeddings of a batch: `[batch, sequence, dim]` flattened, and SDXL's pooled embedding `[batch, pooledDim]`. */
export interface Embeddings {
  data: Float32Array;
  batch: number;
  sequence: number;
  dim: number;
  pooled?: Float32Array;
  pooledDim?: number;
}

/** One encoder with its tokenizer, its ids input and the outputs the UNet reads. */
interface Encoder {
  model: OrtModel;
  tokenizer: ClipTokenizer;
  ids: IoSpec;
  /** The hidden state read: last_hidden_state, or (SDXL) the penultimate hidden_states.N. */
  hidden: string;
  /** SDXL's second encoder: text_embeds (else pooler_output). */
  pooled?: string;
}

/** Options of {@link TextEncoders}. */
export interface TextEncoderOptions {
  /** SDXL: read penultimate hidden states (and the second encoder's pooled output). */
  sdxl: boolean;
  /** SDXL pipelines zero an empty negative prompt's embeddings (model_index.json force_zeros_for_empty_prompt). */
  forceZerosForEmptyPrompt?: boolean;
  onWarning?: (message: string) => void;
}

/** The pipeline's text encoders. */
export class TextEncoders {
  private readonly encoders: Encoder[];
  private readonly warnedPrompts = new Set<string>();

  constructor(parts: Array<{ model: OrtModel; tokenizer: ClipTokenizer }>, private readonly opts: TextEncoderOptions) {
    if (opts.sdxl && parts.length < 2) throw new Error(`${parts[0].model.path}: the UNet takes SDXL's added conditioning (text_embeds, time_ids), which needs a second text encoder; the folder has no text_encoder_2/model.onnx`);
    this.encoders = parts.map((p, k) => {
      const ids = p.model.input(['input_ids'], (s) => s.shape.length === 2);
      const hidden = opts.sdxl ? penultimate(p.model) : p.model.output(['last_hidden_state']).name;
      const pooled = opts.sdxl && k === parts.length - 1 ? p.model.output(['text_embeds', 'pooler_output']).name : undefined;
      return { model: p.model, tokenizer: p.tokenizer, ids, hidden, pooled };
    });
  }

  /** The first encoder's tokenizer (what SD 1.x/2.x use). */
  get tokenizer(): ClipTokenizer {
    return this.encoders[0].tokenizer;
  }

  /** Embeddings of `prompts`; a prompt longer than a tokenizer's length is cut, with one warning per prompt. */
  async encode(prompts: string[], negative = false): Promise<Embeddings> {
    const parts: Array<{ data: Float32Array; dim: number; pooled?: Float32Array }> = [];
    let sequence = 0;
    for (const e of this.encoders) {
      const rows = prompts.map((p) => this.tokens(e.tokenizer, p));
      sequence = rows[0].length;
      parts.push(await runEncoder(e, rows));
    }
    const dim = parts.reduce((n, p) => n + p.dim, 0);
    const data = parts.length === 1 ? parts[0].data : sideBySide(parts, prompts.length * sequence);
    const last = parts[parts.length - 1];
    const out: Embeddings = { data, batch: prompts.length, sequence, dim, pooled: last.pooled, pooledDim: last.pooled && last.pooled.length / prompts.length };
    // SDXL's empty negative prompt: zeros, not the encoding of ""
    if (negative && this.opts.sdxl && (this.opts.forceZerosForEmptyPrompt ?? true)) {
      prompts.forEach((p, k) => { if (p === '') zeroRow(out, k); });
    }
    return out;
  }

  /** Runs ids (one row per prompt) through the first encoder: its last hidden state. */
  async encodeIds(rows: number[][]): Promise<Embeddings> {
    const r = await runEncoder(this.encoders[0], rows);
    return { data: r.data, batch: rows.length, sequence: rows[0].length, dim: r.dim };
  }

  /** Frees every encoder's session. */
  async release(): Promise<void> {
    await Promise.all(this.encoders.map((e) => e.model.release()));
  }

  private tokens(tokenizer: ClipTokenizer, p: string): number[] {
    const { ids, dropped, droppedFrom } = tokenizer.encodeCounted(p);
    if (dropped && !this.warnedPrompts.has(p)) {
      this.warnedPrompts.add(p);
      const room = tokenizer.maxLength - 2;
      this.opts.onWarning?.(`the prompt "${p.length > 40 ? `${p.slice(0, 40)}…` : p}" is ${room + dropped} tokens, but the text encoder reads ${room} ` +
        `(${tokenizer.maxLength} with its start and end marks): the last ${dropped}, from "${droppedFrom}", are ignored; shorten the prompt`);
    }
    return ids;
  }
}

// hidden_states.(N-1) of an export that lists hidden_states.0..N (SDXL conditions on the penultimate layer)
function penultimate(model: OrtModel): string {
  const layers = model.outputs.map((o) => /^hidden_states\.(\d+)$/.exec(o.name)?.[1]).filter((k): k is string => k !== undefined).map(Number);
  if (layers.length < 2) {
    throw new Error(`${model.path} has no hidden_states.N outputs, and SDXL conditions on the penultimate layer's; re-export the text encoders with their hidden states (optimum-cli export onnx does)`);
  }
  return `hidden_states.${Math.max(...layers) - 1}`;
}

// one encoder over ids rows, in chunks of its fixed batch if it has one (the last padded)
async function runEncoder(e: Encoder, rows: number[][]): Promise<{ data: Float32Array; dim: number; pooled?: Float32Array }> {
  const seq = rows[0].length;
  const fixedSeq = e.ids.shape[1];
  if (typeof fixedSeq === 'number' && fixedSeq !== seq) {
    throw new Error(`${e.model.path} takes ${fixedSeq} tokens per prompt, but the tokenizer gives ${seq}; set model_max_length ${fixedSeq} in the tokenizer's tokenizer_config.json or re-export the text encoder`);
  }
  const ids = Float32Array.from(rows.flat());
  const hidden: Float32Array[] = [], pooled: Float32Array[] = [];
  let dim = 0;
  for (const ch of planRowChunks(new Array(rows.length).fill(0), { fixed: e.model.fixedBatch(e.ids) })) {
    const out = await e.model.run({ [e.ids.name]: tensorFor(e.ids, gatherRows(ids, seq, ch), [ch.size, seq]) });
    const t = out[e.hidden];
    dim = t.dims[2];
    hidden.push(tensorToFloat32(t).subarray(0, ch.rows.length * seq * dim));
    if (e.pooled) { const p = tensorToFloat32(out[e.pooled]); pooled.push(p.subarray(0, (p.length / ch.size) * ch.rows.length)); }
  }
  return { data: concat(hidden), dim, pooled: e.pooled ? concat(pooled) : undefined };
}

// [batch·sequence, d1] and [batch·sequence, d2] -> [batch·sequence, d1 + d2]
function sideBySide(parts: Array<{ data: Float32Array; dim: number }>, tokens: number): Float32Array {
  const dim = parts.reduce((n, p) => n + p.dim, 0);
  const out = new Float32Array(tokens * dim);
  for (let t = 0; t < tokens; t++) {
    let at = t * dim;
    for (const p of parts) { out.set(p.data.subarray(t * p.dim, (t + 1) * p.dim), at); at += p.dim; }
  }
  return out;
}

function zeroRow(e: Embeddings, k: number): void {
  const per = e.sequence * e.dim;
  e.data.fill(0, k * per, (k + 1) * per);
  if (e.pooled && e.pooledDim) e.pooled.fill(0, k * e.pooledDim, (k + 1) * e.pooledDim);
}

/** Concatenates float arrays. */
export function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
