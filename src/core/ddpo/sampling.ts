/** The sampling half of a DDPO epoch: prompts, images with trajectories and log-probs, and their rewards. */
import type { GaussianRng } from '../diffusion/rng';
import type { ImageRGB } from '../image/rgb';
import type { DdpoConfig } from './config';
import type { Policy, RewardFn } from './types';
import { assertFinite, namingMemorySetting } from './guards';
import { drawSeed, randInt } from './random';

/** Where training prompts come from (TRL's prompt_fn): a prompt and metadata handed to the reward. */
export type PromptSource = (rng: GaussianRng) => { prompt: string; metadata: Record<string, unknown> };

/** DDPO's default prompt function: a uniformly random prompt from a list. */
export function uniformPrompts(prompts: string[]): PromptSource {
  if (prompts.length === 0) throw new Error('No prompts to train on: add prompts to experiment.json ("prompts": ["a photo of a cat", ...])');
  return (rng) => ({ prompt: prompts[randInt(rng, prompts.length)], metadata: {} });
}

/** All samples of one epoch, in sampling order. */
export interface EpochSamples {
  prompts: string[];
  metadata: Record<string, unknown>[];
  timesteps: number[];
  latents: Float32Array[];
  logProbs: number[][];
  rewards: number[];
  images: ImageRGB[];
}

/** Context of the sampling phase. */
export interface SamplingContext {
  config: DdpoConfig;
  policy: Policy;
  reward: RewardFn;
  promptSource: PromptSource;
  promptRng: GaussianRng;
  noiseRng: GaussianRng;
  epoch: number;
  globalStep: number;
  signal?: AbortSignal;
  onBatch?: (done: number, total: number) => void;
  /** Seconds spent waiting on rewards after sampling finished (async) or while scoring (sync). */
  rewardSeconds?: { value: number };
}

/** Samples sample_num_batches_per_epoch batches of sample_batch_size and scores them. */
export async function sampleEpoch(ctx: SamplingContext): Promise<EpochSamples> {
  const c = ctx.config;
  const out: EpochSamples = { prompts: [], metadata: [], timesteps: [], latents: [], logProbs: [], rewards: [], images: [] };
  const pending: Promise<number[]>[] = [];
  const limit = limiter(c.max_workers);
  let rewardWait = 0;
  for (let b = 0; b < c.sample_num_batches_per_epoch; b++) {
    ctx.signal?.throwIfAborted();
    const drawn = Array.from({ length: c.sample_batch_size }, () => ctx.promptSource(ctx.promptRng));
    const prompts = drawn.map((d) => d.prompt);
    const metadata = drawn.map((d) => d.metadata);
    const seed = drawSeed(ctx.noiseRng);
    const s = await namingMemorySetting('sample', 'sample_batch_size', c.sample_batch_size, () => ctx.policy.sample({
      prompts, negativePrompt: c.negative_prompts, seed, numSteps: c.sample_num_steps, eta: c.sample_eta,
      guidanceScale: c.sample_guidance_scale, signal: ctx.signal,
    }));
    if (s.images.length !== prompts.length || s.latents.length !== prompts.length) {
      throw new Error(`policy.sample returned ${s.images.length} images for ${prompts.length} prompts`);
    }
    s.logProbs.forEach((lp) => assertFinite(lp, 'sampling log-prob', ctx.epoch, ctx.globalStep, 'sample'));
    out.prompts.push(...prompts);
    out.metadata.push(...metadata);
    out.timesteps = s.timesteps;
    out.latents.push(...s.latents);
    out.logProbs.push(...s.logProbs);
    out.images.push(...s.images);
    const tReward = performance.now(); // a synchronous reward runs inside this call
    const scoring = limit(() => ctx.reward(s.images, prompts, metadata));
    scoring.catch(() => undefined); // reported by Promise.all below, not as an unhandled rejection
    pending.push(scoring);
    if (!c.async_reward_computation) {
      await scoring;
      rewardWait += (performance.now() - tReward) / 1000;
    }
    ctx.onBatch?.(b + 1, c.sample_num_batches_per_epoch);
  }
  const t0 = performance.now();
  const batches = await Promise.all(pending);
  rewardWait += (performance.now() - t0) / 1000;
  if (ctx.rewardSeconds) ctx.rewardSeconds.value = rewardWait;
  batches.forEach((r, b) => {
    if (!Array.isArray(r) || r.length !== c.sample_batch_size) throw new Error(`The reward returned ${Array.isArray(r) ? r.length : typeof r} values for batch ${b} of ${c.sample_batch_size} images; it must return one number per image`);
  });
  out.rewards = batches.flat().map(Number);
  assertFinite(out.rewards, 'reward', ctx.epoch, ctx.globalStep, 'reward');
  return out;
}

// At most `n` reward calls in flight (TRL's max_workers thread pool).
function limiter(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await f();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}
