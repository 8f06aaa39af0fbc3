/** Trains the embedded tiny model's UNet (epsilon prediction, caption dropout, AdamW, EMA) and writes the SD-layout folder. */
import { mkdtempSync, rmSync } from 'node:fs';
import { atomicWriteFileSync } from '../fsutil';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { buildUNet } from '../graphs/unet';
import { writeModelFolder } from '../graphs/modelFolder';
import { Model } from '../onnx/ir';
import { loadModel } from '../onnx/proto';
import { ClipTokenizer } from '../diffusion/tokenizer';
import { makeDdimSchedule, parseDdimConfig } from '../diffusion/ddim';
import { GaussianRng } from '../diffusion/rng';
import { AdamW, clipGradNorm } from '../train/adamw';
import { createSession, runModel } from '../runtime/ortRun';
import { mulberry32 } from '../random';
import { caption, captionWords, randomScene, renderScene } from './scenes';
import { buildVocab, writeTokenizerFolder } from './vocab';
import {
  buildTinyVaeDecoder, buildTinyVaeEncoder, encodeLatent, TINY_IMAGE_SIZE, TINY_LATENT_SIZE, TINY_MODEL_UNET, TINY_SCALING_FACTOR, TINY_SCHEDULER_CONFIG,
} from './model';
import { buildTinyTextEncoder, TINY_TEXT_DIM } from './textEncoder';
import { createUNetTrainer, withWeights } from './trainGraph';

/** Settings of a training run; the same settings and seed give the same data, noise and initial weights. */
export interface TinyTrainOptions {
  out: string;
  steps: number;
  seed: number;
  batch: number;
  lr: number;
  /** Probability of training on the empty prompt (classifier-free guidance). */
  dropPrompt?: number;
  warmup?: number;
  emaDecay?: number;
  /** Write the folder every this many steps (and at the end). */
  checkpointEvery?: number;
  threads?: number;
  /** A tiny-model folder whose UNet weights to start from (continued training) instead of the seeded init. */
  init?: string;
  log?: (line: string) => void;
}

/** Tokens per prompt (tokenizer model_max_length): the longest caption is 12 words plus bos/eos. */
export const TINY_SEQUENCE = 16;
const SEQ = TINY_SEQUENCE;

/** Builds the fixed parts, trains the UNet, and writes `out` as a Stable Diffusion ONNX folder (EMA weights). */
export async function trainTinyModel(o: TinyTrainOptions): Promise<{ losses: Array<[number, number]> }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const parts = await buildParts(o.seed, o.threads);
  const { unet, embed } = parts;
  const schedule = makeDdimSchedule(parseDdimConfig(TINY_SCHEDULER_CONFIG));

  const B = o.batch, n = TINY_LATENT_SIZE;
  const trainer = await createUNetTrainer(unet, B, n, SEQ, o.threads);
  const opt = new AdamW({ lr: o.lr, weightDecay: 0 });
  if (o.init) loadUNetWeights(join(o.init, 'unet/model.onnx'), trainer.params);
  const ema = new Map([...trainer.params].map(([k, v]) => [k, Float32Array.from(v)]));
  const rand = mulberry32(o.seed * 7919 + 17);
  const gauss = new GaussianRng(o.seed);
  const x0 = new Float32Array(B * 4 * n * n), xt = new Float32Array(B * 4 * n * n), eps = new Float32Array(B * 4 * n * n);
  const ts = new Array<number>(B);
  const warmup = o.warmup ?? 200;
  const lossLog = new LossLog(o.steps, log);
  const save = (step: number) => writeTinyFolder(o, parts, ema, step, lossLog.losses);

  for (let step = 1; step <= o.steps; step++) {
    const prompts = drawNoisyBatch(rand, gauss, schedule.alphasCumprod, o.dropPrompt ?? 0.1, { x0, xt, eps, ts });
    const context = await embed(prompts);
    const { loss, grads } = await trainer.step({
      sample: { dims: [B, 4, n, n], data: xt }, timestep: { dims: [B], data: ts },
      context: { dims: [B, SEQ, TINY_TEXT_DIM], data: context }, noise: { dims: [B, 4, n, n], data: eps },
    });
    if (!Number.isFinite(loss)) throw new Error(`training diverged at step ${step} (loss ${loss}); lower --lr`);
    clipGradNorm(grads.values(), 1);
    const lr = learningRate(step, o.steps, warmup, o.lr);
    (opt as { lr: number }).lr = lr;
    opt.update(trainer.params, grads);
    const decay = Math.min(o.emaDecay ?? 0.999, (1 + step) / (10 + step));
    updateEma(ema, trainer.params, decay);
    lossLog.add(step, loss, lr);
    if (o.checkpointEvery && step % o.checkpointEvery === 0 && step < o.steps) save(step);
  }
  save(o.steps);
  await trainer.release();
  await parts.textSession.release();
  rmSync(parts.tokDir, { recursive: true, force: true });
  return { losses: lossLog.losses };
}

// What a run builds before training: the tokenizer (and its folder), the text encoder and its session, the VAE
// decoder, and the seeded UNet to train.
interface TinyParts {
  tokDir: string;
  textEncoder: Model;
  vae: Model;
  unet: Model;
  textSession: ort.InferenceSession;
  embed: (prompts: string[]) => Promise<Float32Array>;
}

async function buildParts(seed: number, threads: number | undefined): Promise<TinyParts> {
  const vocab = buildVocab(captionWords());
  const tokDir = mkdtempSync(join(tmpdir(), 'tiny-tokenizer-'));
  writeTokenizerFolder(tokDir, vocab, SEQ);
  const tokenizer = new ClipTokenizer({ vocab: vocab.vocab, merges: vocab.merges, maxLength: SEQ });
  const textEncoder = buildTinyTextEncoder(Object.keys(vocab.vocab).length, tokenizer.eosId, seed);
  const unet = buildUNet(TINY_MODEL_UNET, { seed, timestep: 'int64-batch' });
  const vae = buildTinyVaeDecoder();
  const textSession = await createSession(textEncoder, { threads });
  const embed = embeddingCache(textSession, textEncoder, tokenizer);
  return { tokDir, textEncoder, vae, unet, textSession, embed };
}

// Writes `o.out` as a Stable Diffusion ONNX folder with the EMA weights, and training.json.
function writeTinyFolder(o: TinyTrainOptions, parts: TinyParts, ema: Map<string, Float32Array>, step: number, losses: Array<[number, number]>): void {
  writeModelFolder(o.out, {
    unet: withWeights(parts.unet, ema), textEncoder: parts.textEncoder, vaeDecoder: parts.vae, vaeEncoder: buildTinyVaeEncoder(), tokenizerDir: parts.tokDir, scheduler: TINY_SCHEDULER_CONFIG,
    name: 'ddpo-studio/tiny-shapes', scalingFactor: TINY_SCALING_FACTOR,
  });
  atomicWriteFileSync(join(o.out, 'training.json'), JSON.stringify({
    steps: step, seed: o.seed, batch: o.batch, lr: o.lr, ...(o.init ? { init: o.init } : {}), image_size: TINY_IMAGE_SIZE, loss_every_50_steps: losses,
  }) + '\n');
}

// ema ← decay·ema + (1 − decay)·params
function updateEma(ema: Map<string, Float32Array>, params: Map<string, Float32Array>, decay: number): void {
  for (const [k, p] of params) {
    const e = ema.get(k)!;
    for (let i = 0; i < p.length; i++) e[i] = decay * e[i] + (1 - decay) * p[i];
  }
}

/** The mean loss of every 50 steps (and of the last), logged with the learning rate and the time per step. */
export class LossLog {
  readonly losses: Array<[number, number]> = [];
  private sum = 0;
  private n = 0;
  private t0 = Date.now();

  constructor(private readonly steps: number, private readonly log: (line: string) => void) {}

  add(step: number, loss: number, lr: number): void {
    this.sum += loss; this.n++;
    if (step % 50 === 0 || step === this.steps) {
      this.losses.push([step, +(this.sum / this.n).toFixed(5)]);
      this.log(`step ${step}/${this.steps} loss ${(this.sum / this.n).toFixed(4)} lr ${lr.toExponential(2)} ${((Date.now() - this.t0) / this.n).toFixed(0)} ms/step`);
      this.sum = 0; this.n = 0; this.t0 = Date.now();
    }
  }
}

/** Copies the UNet weights of an ONNX file into `params` (same names and sizes). */
function loadUNetWeights(file: string, params: Map<string, Float32Array>): void {
  const inits = loadModel(file).graph.initializers;
  for (const [k, p] of params) {
    const t = inits.get(k);
    if (!t || t.data.length !== p.length) throw new Error(`${file} has no weight ${k} of ${p.length} values; --init needs a folder written by this script`);
    p.set(t.data as Float32Array);
  }
}

/** Linear warm-up to `lr`, then a cosine decay to lr/10 at the last step. */
export function learningRate(step: number, total: number, warmup: number, lr: number): number {
  if (step <= warmup) return (lr * step) / warmup;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  return lr * (0.1 + 0.45 * (1 + Math.cos(Math.PI * progress)));
}

/**
 * Draws `ts.length` scenes, their captions (the empty prompt with probability `drop`), timesteps and noise, and fills
 * x0 (scaled latents), eps, and xt = sqrt(ᾱ_t)·x0 + sqrt(1-ᾱ_t)·eps. Returns the prompts.
 */
export function drawNoisyBatch(rand: () => number, gauss: GaussianRng, alphasCumprod: Float64Array, drop: number,
  b: { x0: Float32Array; xt: Float32Array; eps: Float32Array; ts: number[] }): string[] {
  const T = alphasCumprod.length, per = b.x0.length / b.ts.length;
  const prompts: string[] = [];
  for (let k = 0; k < b.ts.length; k++) {
    const scene = randomScene(rand);
    prompts.push(rand() < drop ? '' : caption(scene));
    encodeLatent(renderScene(scene, TINY_IMAGE_SIZE), b.x0.subarray(k * per, (k + 1) * per));
    b.ts[k] = Math.min(T - 1, Math.floor(rand() * T));
  }
  gauss.fill(b.eps);
  for (let k = 0; k < b.ts.length; k++) {
    const ab = alphasCumprod[b.ts[k]];
    const a = Math.sqrt(ab) * TINY_SCALING_FACTOR, s = Math.sqrt(1 - ab);
    for (let i = k * per; i < (k + 1) * per; i++) b.xt[i] = a * b.x0[i] + s * b.eps[i];
  }
  return prompts;
}

/** Text embeddings `[batch, 16, dim]` for prompts, each prompt encoded once and cached. */
function embeddingCache(session: ort.InferenceSession, model: Model, tok: ClipTokenizer): (prompts: string[]) => Promise<Float32Array> {
  const cache = new Map<string, Float32Array>();
  return async (prompts) => {
    const missing = [...new Set(prompts.filter((p) => !cache.has(p)))];
    if (missing.length) {
      const ids = missing.map((p) => tok.encode(p));
      const out = await runModel(session, model, { input_ids: { dims: [ids.length, SEQ], data: ids.flat() } }, ['last_hidden_state']);
      const h = out.get('last_hidden_state')!.data;
      const each = SEQ * TINY_TEXT_DIM;
      missing.forEach((p, i) => cache.set(p, h.slice(i * each, (i + 1) * each)));
    }
    const all = new Float32Array(prompts.length * SEQ * TINY_TEXT_DIM);
    prompts.forEach((p, i) => all.set(cache.get(p)!, i * SEQ * TINY_TEXT_DIM));
    return all;
  };
}
