/** The per-epoch lines of `metrics.jsonl`. */
import * as fs from 'node:fs';
import { atomicWriteFile } from '../fsutil';

/** One evaluation image: a fixed prompt and seed, rendered with the current LoRA. */
export interface EvalImage {
  prompt: string;
  seed: number;
  /** Path relative to the experiment folder. */
  image: string;
  reward: number;
}

/** One line of metrics.jsonl, written when an epoch finishes. */
export interface EpochMetrics {
  epoch: number;
  /** Optimizer steps taken so far, this epoch's included. */
  global_step: number;
  reward_mean: number;
  reward_std: number;
  reward_per_prompt: Record<string, { mean: number; std: number; count: number }>;
  /** Means over this epoch's micro-steps. */
  approx_kl: number;
  clipfrac: number;
  /** Clip fraction before the epoch's first optimizer step (LoRA unchanged since sampling): > 0 means numerical mismatch, clipped under train_old_log_probs "sampler" (see ppo.ts). Absent in older files. */
  clipfrac_before_update?: number;
  /** Where PPO's old log-probabilities came from (train_old_log_probs); absent in older files (the sampler). */
  old_log_probs?: 'sampler' | 'training_graph';
  /** The largest |training graph − sampler| log-probability difference over the transitions trained before the first optimizer step or scored (float16: about 1e-4 to 1e-3). */
  logprob_mismatch?: number;
  loss: number;
  grad_norm: number;
  advantage_mean: number;
  advantage_std: number;
  /** Wall seconds of each phase (not reproducible, unlike everything else); `checkpoint` is the save after the previous epoch, `total` excludes it. */
  seconds: { eval: number; sample: number; reward: number; train: number; checkpoint: number; total: number };
  /** Images of the fixed evaluation set rendered at the start of this epoch (absent when log_image_freq skips it). */
  eval?: EvalImage[];
  eval_reward_mean?: number;
  /** Set on an epoch whose approx_kl spiked (train_kl_guard): the earlier epochs' median and the factor. The second such epoch in a row stopped the run. */
  kl_guard?: { median: number; factor: number };
  time: string;
}

/** Implicit-reward figures of Diffusion-DPO over a set of pairs (the sign of the DPO margin says which image the LoRA prefers). */
export interface ImplicitReward {
  /** Pairs whose margin is > 0: the tuned model prefers the image the rater preferred, relative to the base model. */
  implicit_acc: number;
  margin_mean: number;
  /** The DPO loss over these pairs. */
  loss: number;
  pairs: number;
}

/** One line of a Diffusion-DPO run's metrics.jsonl. */
export interface DpoEpochMetrics extends ImplicitReward {
  algorithm: 'diffusion-dpo';
  epoch: number;
  global_step: number;
  /** Means over the epoch's steps (the figures of ImplicitReward are over the pairs it trained on). */
  grad_norm: number;
  /** The plain diffusion loss of the policy and of the reference on the epoch's pairs (to watch the policy stay a diffusion model). */
  model_mse: number;
  ref_mse: number;
  beta_dpo: number;
  /** The rated pairs the run trains on and holds out, what it left out of the ratings, and where the latents came from. */
  data: { train: number; held_out: number; ties: number; skips: number; without_latents: number; latents: 'vae_encoder' | 'stored' };
  /** The same figures on the held-out pairs (at fixed noise levels), after the epoch's updates; absent without held-out pairs. */
  held_out?: ImplicitReward;
  seconds: { eval: number; train: number; held_out: number; checkpoint: number; total: number };
  eval?: EvalImage[];
  time: string;
}

/** A line of either algorithm's metrics.jsonl. */
export type AnyEpochMetrics = EpochMetrics | DpoEpochMetrics;

/** True for a Diffusion-DPO line. */
export function isDpoMetrics(m: AnyEpochMetrics): m is DpoEpochMetrics {
  return (m as DpoEpochMetrics).algorithm === 'diffusion-dpo';
}

/** Reads metrics.jsonl; a torn last line (a kill mid-write) is dropped. */
export function readMetrics<T = EpochMetrics>(file: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // only the last line can be torn; anything after it would be from a later append
    }
  }
  return out;
}

/** Rewrites metrics.jsonl keeping only epochs <= `lastEpoch` (what a resume continues from). */
export async function truncateMetrics(file: string, lastEpoch: number): Promise<void> {
  const kept = readMetrics<{ epoch: number }>(file).filter((m) => m.epoch <= lastEpoch);
  await atomicWriteFile(file, kept.map((m) => JSON.stringify(m) + '\n').join(''));
}

/** Replaces NaN/Infinity by null-safe strings so a line stays valid JSON. */
export function jsonSafe<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))) as T;
}
