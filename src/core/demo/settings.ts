/** The demo's knobs: sizes of each phase and the DDPO settings, full and `--quick`. */
import { renameEarlierSettings } from '../ddpo/config';
import type { TrainingAlgorithm } from '../../protocol';
import type { PriorName } from '../reward/priorNames';
import { BUILTIN_BACKBONE_ID, TINY_CLIP_BACKBONE_ID } from '../experiment/schema';
import { DEMO_EVAL_PROMPTS, DEMO_TRAIN_PROMPTS, FIDELITY_EVAL_PROMPTS, FIDELITY_TRAIN_PROMPTS, type DemoTaste } from './taste';

/** Everything `ddpo demo` can be told. */
export interface DemoOptions {
  /** Folder whose `.ddpo/` receives the experiment (default: the current folder). */
  workspace: string;
  /** Where report.json and grid.png go (default: the experiment folder). */
  out?: string;
  /** Experiment name (default `demo-<UTC timestamp>`). */
  name?: string;
  /** Model folder (default: the embedded media/tiny-model). */
  modelDir?: string;
  seed: number;
  /** The simulated rater's taste. */
  taste: DemoTaste;
  /** The reward backbone the experiment records (a `--backbone` value; default {@link demoBackbone} of the taste). */
  backbone?: string;
  /** Rated pairs. */
  pairs: number;
  /** L1 penalty of the reward head's fit (see FitOptions.l1); a linear head's only. */
  rewardL1: number;
  /** The reward head: linear (default) or a one-hidden-layer MLP of 32. */
  rewardHead?: 'linear' | 'mlp';
  /** The built-in prior the reward head starts from (the experiment's `rewardPrior`); absent: it starts cold. */
  rewardPrior?: PriorName;
  /** Base images generated per training prompt for rating. */
  imagesPerPrompt: number;
  /** What fine-tunes the LoRA: DDPO against a reward model learned from the ratings, or Diffusion-DPO on the rated pairs. */
  algorithm: TrainingAlgorithm;
  /** DDPO epochs (over all rounds). */
  epochs: number;
  /**
   * DDPO's rounds of the loop (default 1): rate, train the reward model, fine-tune; each later round rates samples of
   * the model tuned so far. The pairs and epochs are shared evenly between the rounds.
   */
  rounds?: number;
  /** Diffusion-DPO epochs (passes over the rated pairs). */
  dpoEpochs: number;
  /** DDPO samples per epoch = sampleBatch x batchesPerEpoch. */
  sampleBatch: number;
  batchesPerEpoch: number;
  steps: number;
  guidance: number;
  trainPrompts: readonly string[];
  /** Held-out prompts x seeds of the blind evaluation (and of the grid's rows and first columns). */
  evalPrompts: readonly string[];
  evalSeeds: number;
  gridColumns: number;
  threads?: number;
  /** ddpo.json keys over {@link demoDdpoSettings}, for the algorithm that runs. */
  ddpo?: Record<string, unknown>;
}

/** Held-out evaluation seeds start here; rating samples use seed..seed+1000·prompts and DDPO draws random 32-bit seeds. */
export const EVAL_SEED_BASE = 900_000;

/** The full demo (the README's main job): under a minute on two idle CPU cores. */
export function fullDemoOptions(workspace: string): DemoOptions {
  return {
    workspace, seed: 0, taste: 'big', pairs: 300, rewardL1: 0.3, imagesPerPrompt: 16, algorithm: 'ddpo', epochs: 20, dpoEpochs: DPO_DEMO_SETTINGS.num_epochs as number, sampleBatch: 16, batchesPerEpoch: 2, steps: 6, guidance: 5,
    trainPrompts: DEMO_TRAIN_PROMPTS, evalPrompts: DEMO_EVAL_PROMPTS, evalSeeds: 10, gridColumns: 6,
  };
}

/** A reduced demo for tests and a first look (well under a minute): fewer pairs, one short epoch, a small eval. */
export function quickDemoOptions(workspace: string): DemoOptions {
  return {
    ...fullDemoOptions(workspace), pairs: 30, imagesPerPrompt: 6, epochs: 1, dpoEpochs: 1, sampleBatch: 4, batchesPerEpoch: 2, steps: 6,
    trainPrompts: DEMO_TRAIN_PROMPTS.slice(0, 3), evalPrompts: DEMO_EVAL_PROMPTS.slice(0, 2), evalSeeds: 4, gridColumns: 4,
  };
}

/**
 * The options with another taste: its prompts (as many as `o` has, so `--quick` stays small). The fidelity taste rates
 * prompts whose shapes the base model often misdraws, so the ratings hold the cases the taste is about.
 */
export function withTaste(o: DemoOptions, taste: DemoTaste): DemoOptions {
  if (taste !== 'fidelity') return { ...o, taste };
  return { ...o, taste, trainPrompts: FIDELITY_TRAIN_PROMPTS.slice(0, o.trainPrompts.length), evalPrompts: FIDELITY_EVAL_PROMPTS.slice(0, o.evalPrompts.length) };
}

/** The reward backbone a demo's experiment records unless told: the tiny CLIP for a taste that reads the prompt, else the built-in features. */
export function demoBackbone(taste: DemoTaste): string {
  return taste === 'fidelity' ? TINY_CLIP_BACKBONE_ID : BUILTIN_BACKBONE_ID;
}

/**
 * ddpo.json for the demo, and why it departs from TRL's defaults (the measurements behind each choice:
 * docs/performance.md, "How the demo's settings were chosen" and "Training longer, and the KL guard"):
 * - 6 sampling steps, 16x16 latents, 32 samples per epoch, 20 epochs: a 32 px model that learns on a CPU in well under
 *   a minute of DDPO. (Outside ddpo.json the reward head is fitted with an L1 penalty, rewardL1, so it leans on the few
 *   features that explain the ratings.)
 * - train_timestep_fraction 0.34 with train_timestep_selection 'earliest' (ours; TRL draws a random subset): only the
 *   first 2 of 6 steps train, where a shape's size is settled; that learns more at a third of the cost, while training
 *   the first step alone diverges.
 * - train_num_inner_epochs 2: two PPO passes over each epoch's samples, so 20 short epochs move the policy.
 * - train_timesteps_per_run 2 (ours, speed only): both trained timesteps of a batch in one graph run.
 * - train_learning_rate 2e-3 with train_clip_range 5e-2: TRL's 3e-4 / 1e-4 assume hundreds of epochs; a higher rate
 *   diverges with the earliest steps.
 * - per-prompt advantage normalisation (buffer 32, min count 4): with global normalisation the learned reward's
 *   per-prompt offsets become advantage noise, and runs diverge.
 * - train_kl_guard 100 (ours): longer runs over-optimise; two approx_kl spikes in a row stop a run and keep the LoRA
 *   from before the first, while a single spike, how a barely moved policy starts to learn, is kept.
 * Without the L1 head and the v2 features (src/core/reward/backbone.ts) the policy learns what the reward model only
 * correlates with size (yellow backgrounds, colour contrast, scattered noise) and loses the blind test.
 */
export function demoDdpoSettings(o: DemoOptions): Record<string, unknown> {
  // an override under a setting's earlier name (--set num_inner_epochs=3) replaces the demo's value too
  const set = renameEarlierSettings(o.ddpo ?? {}).settings;
  const dpo = o.algorithm === 'diffusion-dpo';
  return {
    ...ddpoPart(o), ...(dpo ? {} : set),
    // both algorithms' settings, so the studio can run the other one on the demo's ratings and compare them blind
    algorithm: o.algorithm, diffusion_dpo: { ...DPO_DEMO_SETTINGS, num_epochs: dpo ? o.dpoEpochs : DPO_DEMO_SETTINGS.num_epochs, ...(dpo ? set : {}) },
  };
}

/**
 * The Diffusion-DPO demo's settings (`diffusion_dpo` in its ddpo.json, over the DDPO demo's, whose earliest-third
 * timestep selection it keeps): six passes over the rated pairs at β 2500, half the official code's SD 1.5 value
 * (the studio's default): on this 32 px model it won the blind test more often on every seed it was measured on, and
 * β 10000 less (docs/diffusion-dpo.md, "Settings measured").
 */
export const DPO_DEMO_SETTINGS: Readonly<Record<string, unknown>> = Object.freeze({
  num_epochs: 6, train_batch_size: 8, train_gradient_accumulation_steps: 1, train_learning_rate: 1e-3, beta_dpo: 2500,
});

function ddpoPart(o: DemoOptions): Record<string, unknown> {
  return {
    exp_name: 'ddpo-demo', seed: o.seed, num_epochs: o.epochs, sample_num_steps: o.steps, sample_eta: 1, sample_guidance_scale: o.guidance,
    sample_batch_size: o.sampleBatch, sample_num_batches_per_epoch: o.batchesPerEpoch, train_batch_size: 2, train_gradient_accumulation_steps: 4,
    train_num_inner_epochs: 2, train_learning_rate: 2e-3, train_clip_range: 5e-2, train_timestep_fraction: 0.34, train_timestep_selection: 'earliest',
    train_timesteps_per_run: 2,
    lora_rank: 4, lora_alpha: 4,
    per_prompt_stat_tracking: true, per_prompt_stat_tracking_buffer_size: 32, per_prompt_stat_tracking_min_count: 4,
    latent_size: 16, eval_seeds: [], save_freq: 1000, reward: 'learned', train_kl_guard: 100,
  };
}
