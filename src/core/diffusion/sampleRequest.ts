/** A sampling request and its result, and what both sampling engines (host and graph) prepare from the request alike. */
import { Embeddings, StableDiffusionPipeline } from './pipeline';
import { ddimTimesteps } from './ddim';
import { unetStatics } from './unetRoles';
import { GaussianRng, GaussianRngState } from './rng';

/** Progress after each denoising step. */
export interface SampleProgress {
  step: number;
  steps: number;
  timestep: number;
}

/** One sampling run of `count` images (one prompt each, or one prompt for all). */
export interface SampleRequest {
  /** One prompt for every image, or one per image. Ignored when `promptEmbeds` is given. */
  prompt?: string | string[];
  /** Negative prompt(s); the empty prompt when absent. */
  negativePrompt?: string | string[];
  /** Precomputed conditional / unconditional embeddings `[count or 1, seq, dim]`. */
  promptEmbeds?: Embeddings;
  negativeEmbeds?: Embeddings;
  count: number;
  /** Image k uses seed + k, so any image can be reproduced alone. */
  seed: number;
  steps: number;
  guidance: number;
  eta: number;
  /** Latent size; defaults to the pipeline's. */
  latentHeight?: number;
  latentWidth?: number;
  /** Generator states to continue from (one per image, e.g. a previous result's `rngStates`); replaces seeding. */
  rngStates?: GaussianRngState[];
  /** Initial latents `[count, C, h, w]`; replaces the seeded draw. */
  latents0?: Float32Array;
  /** Per-step noise `[count, C, h, w]` for each step; replaces the seeded draw. */
  noise?: Float32Array[];
  /** Keep the guided model output of every step (conformance and debugging). */
  recordEps?: boolean;
  onProgress?: (p: SampleProgress) => void;
  /** Checked between denoising steps. */
  signal?: AbortSignal;
  /**
   * 'host' (default): DDIM arithmetic in TypeScript. 'graph': the DDIM/CFG step as an ONNX graph chained to the
   * UNet's output tensors, so latents stay on the device when the sessions keep outputs in GPU buffers.
   */
  engine?: 'host' | 'graph';
}

/** What DDPO needs from a sampling run: the whole latent trajectory and each transition's log-probability. */
export interface SampleResult {
  count: number;
  channels: number;
  latentHeight: number;
  latentWidth: number;
  timesteps: number[];
  /** steps + 1 latents `[count, C, h, w]`, trajectory[0] the initial noise. */
  trajectory: Float32Array[];
  /** Per step, per image: log p(trajectory[i+1] | trajectory[i]), mean over C·H·W. */
  logProbs: Float64Array[];
  /** Guided model outputs per step, when `recordEps` was set. */
  eps?: Float32Array[];
  /** Conditional and unconditional embeddings used (`[count, seq, dim]`). */
  promptEmbeds: Embeddings;
  negativeEmbeds: Embeddings;
  /** Per image: its seed and the generator state after the run. */
  seeds: number[];
  rngStates: GaussianRngState[];
}

function perImage(v: string | string[] | undefined, count: number, what: string): string[] {
  const list = Array.isArray(v) ? v : [v ?? ''];
  if (list.length === 1) return new Array(count).fill(list[0]);
  if (list.length !== count) throw new Error(`${what}: got ${list.length} prompts for ${count} images`);
  return list;
}

function repeatTo(e: Embeddings, count: number, what: string): Embeddings {
  if (e.batch === count) return e;
  if (e.batch !== 1) throw new Error(`${what}: embeddings have batch ${e.batch}, expected 1 or ${count}`);
  const repeat = (v: Float32Array) => { const out = new Float32Array(count * v.length); for (let k = 0; k < count; k++) out.set(v, k * v.length); return out; };
  return { ...e, data: repeat(e.data), pooled: e.pooled && repeat(e.pooled), batch: count };
}

/** What both sampling engines share: sizes, timesteps, generators, embeddings and the seeded draw. */
export interface PreparedSampling {
  K: number; C: number; h: number; w: number; per: number;
  timesteps: number[];
  seeds: number[];
  rngs: GaussianRng[];
  cond: Embeddings;
  uncond: Embeddings;
  useCfg: boolean;
  /** `[uncond; cond]` with guidance, else `cond`. */
  context: Embeddings;
  /** The given array (checked) or a fresh seeded draw per image. */
  draw(given: Float32Array | undefined, what: string): Float32Array;
}

/** Validates a request, encodes prompts and sets up the per-image generators. */
export async function prepareSampling(pipe: StableDiffusionPipeline, req: SampleRequest): Promise<PreparedSampling> {
  const K = req.count;
  if (!Number.isInteger(K) || K < 1) throw new Error(`count must be a positive integer, got ${K}`);
  if (!(req.eta >= 0)) throw new Error(`eta must be >= 0, got ${req.eta}`);
  const st = unetStatics({ sample: pipe.unetSample, timestep: pipe.unetTimestep, encoderHiddenStates: pipe.unetContext });
  const h = req.latentHeight ?? pipe.defaultLatentSize;
  const w = req.latentWidth ?? st.width ?? pipe.defaultLatentSize;
  if ((st.height !== undefined && h !== st.height) || (st.width !== undefined && w !== st.width)) {
    throw new Error(`${pipe.unet.path} is exported for ${st.height ?? h}x${st.width ?? w} latents only (${8 * (st.height ?? h)}x${8 * (st.width ?? w)} px with an SD VAE), but ${h}x${w} were asked for; ` +
      'generate at that size, or re-export the UNet with dynamic height and width');
  }
  const C = pipe.latentChannels;
  const per = C * h * w;
  const timesteps = ddimTimesteps(pipe.schedule.config, req.steps);
  const seeds = Array.from({ length: K }, (_, k) => req.seed + k);
  if (req.rngStates && req.rngStates.length !== K) throw new Error(`rngStates: got ${req.rngStates.length} states for ${K} images`);
  const rngs = req.rngStates ? req.rngStates.map((s) => GaussianRng.fromState(s)) : seeds.map((s) => new GaussianRng(s));

  req.signal?.throwIfAborted();
  const cond = repeatTo(req.promptEmbeds ?? (await pipe.encodePrompts(perImage(req.prompt, K, 'prompt'))), K, 'promptEmbeds');
  const uncond = repeatTo(req.negativeEmbeds ?? (await pipe.encodePrompts(perImage(req.negativePrompt, K, 'negativePrompt'), { negative: true })), K, 'negativeEmbeds');
  if (st.sequence !== undefined && cond.sequence !== st.sequence) {
    throw new Error(`${pipe.unet.path} takes text embeddings of ${st.sequence} tokens, but the text encoder gives ${cond.sequence}; use the tokenizer and text encoder the UNet was exported with`);
  }
  const useCfg = usesCfg(req.guidance);
  const pooled = cond.pooled && uncond.pooled ? { pooled: concat2(uncond.pooled, cond.pooled) } : {};
  const context: Embeddings = useCfg ? { ...cond, data: concat2(uncond.data, cond.data), ...pooled, batch: 2 * K } : cond;

  const draw = (given: Float32Array | undefined, what: string): Float32Array => {
    if (given) {
      if (given.length !== K * per) throw new Error(`${what} has ${given.length} values, expected ${K}x${C}x${h}x${w}`);
      return given;
    }
    const out = new Float32Array(K * per);
    rngs.forEach((g, k) => g.fill(out.subarray(k * per, (k + 1) * per)));
    return out;
  };
  return { K, C, h, w, per, timesteps, seeds, rngs, cond, uncond, useCfg, context, draw };
}

/** diffusers' rule: guidance <= 1 means no classifier-free guidance, so the UNet skips the unconditional half. */
export function usesCfg(guidance: number): boolean {
  return guidance > 1;
}

/** UNet rows per evaluation for `images` latents: twice as many with classifier-free guidance. */
export function unetRows(images: number, guidance: number): number {
  return usesCfg(guidance) ? 2 * images : images;
}

function concat2(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
