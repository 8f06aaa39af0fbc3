/** A DDPO run in a throw-away folder that returns the per-epoch reward curve (the CPU learning demo and its test). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDdpoConfig, type DdpoConfig } from './config';
import { ddpoLayout } from './layout';
import type { EpochMetrics } from './metrics';
import { createOnnxPolicy } from './onnxPolicy';
import { makeReward } from './rewards';
import { runDdpo } from './trainer';

/**
 * Settings under which the JPEG-compressibility reward of the embedded tiny model rises within 12 short epochs on a
 * CPU (docs/performance.md, "The CPU reward curve"). Far from TRL's defaults: 32 samples per epoch, 2 of 8 timesteps
 * trained, LoRA rank 8, lr 1e-2 and clip range 2e-2, so the LoRA moves visibly in a few epochs.
 */
export const CPU_CURVE_SETTINGS: Readonly<Record<string, unknown>> = Object.freeze({
  num_epochs: 12, sample_num_steps: 8, sample_batch_size: 8, sample_num_batches_per_epoch: 4, train_batch_size: 2,
  train_learning_rate: 1e-2, train_clip_range: 2e-2, train_timestep_fraction: 0.25, lora_rank: 8, lora_alpha: 8,
  per_prompt_stat_tracking: true, per_prompt_stat_tracking_buffer_size: 32, per_prompt_stat_tracking_min_count: 8,
  sample_guidance_scale: 5, latent_size: 16, eval_seeds: [], save_freq: 1000, reward: 'jpeg_compressibility',
});

/** Prompts in the embedded tiny model's vocabulary (media/tiny-model/README.md). */
export const TINY_PROMPTS: readonly string[] = Object.freeze([
  'a big red circle on a blue background', 'a small yellow square on a black background',
  'a green triangle on a white background', 'a purple circle on the left on an orange background',
]);

/** One epoch of a curve. */
export interface CurvePoint {
  epoch: number;
  reward_mean: number;
  reward_std: number;
  approx_kl: number;
  clipfrac: number;
  seconds: number;
}

/** Options of {@link rewardCurve}. */
export interface RewardCurveOptions {
  /** ddpo.json keys over {@link CPU_CURVE_SETTINGS}. */
  overrides?: Record<string, unknown>;
  /** Training prompts; {@link TINY_PROMPTS} by default. */
  prompts?: readonly string[];
  threads?: number;
  /** Keep the run folder (metrics.jsonl, checkpoints) here instead of a deleted temp folder. */
  outDir?: string;
  onEpoch?: (p: CurvePoint) => void;
  onLog?: (line: string) => void;
}

/** Runs DDPO on `modelDir` with {@link CPU_CURVE_SETTINGS} + overrides and returns the config and the curve. */
export async function rewardCurve(modelDir: string, o: RewardCurveOptions = {}): Promise<{ config: DdpoConfig; curve: CurvePoint[] }> {
  const { config } = parseDdpoConfig({ ...CPU_CURVE_SETTINGS, ...o.overrides }, 'reward curve settings');
  const dir = o.outDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-curve-'));
  const policy = await createOnnxPolicy(modelDir, config, { threads: o.threads });
  const curve: CurvePoint[] = [];
  const point = (m: EpochMetrics): CurvePoint => ({ epoch: m.epoch, reward_mean: m.reward_mean, reward_std: m.reward_std, approx_kl: m.approx_kl, clipfrac: m.clipfrac, seconds: m.seconds.total });
  try {
    await runDdpo({
      config, layout: ddpoLayout(dir), policy, reward: await makeReward(config.reward, dir), prompts: [...(o.prompts ?? TINY_PROMPTS)],
      onLog: o.onLog, onEpoch: (m) => { const p = point(m); curve.push(p); o.onEpoch?.(p); },
    });
  } finally {
    await policy.release?.();
    if (!o.outDir) fs.rmSync(dir, { recursive: true, force: true });
  }
  return { config, curve };
}
