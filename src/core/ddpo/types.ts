/** What the DDPO loop needs from a diffusion policy and a reward, kept small so fakes can stand in for tests. */
import type { SafeTensor } from '../safetensors';
import type { ImageRGB } from '../image/rgb';
import type { LoraWeights } from '../train/loraFile';

/**
 * Scores images; one number per image, same order. `metadata[k]` is whatever the prompt source attached to prompt k.
 * `release`, when present, frees what the reward holds (a backbone's sessions) once its run is over.
 */
export type RewardFn = ((images: ImageRGB[], prompts: string[], metadata: Record<string, unknown>[]) => Promise<number[]>) & { release?: () => Promise<void> };

/** One sampling call: image k starts from noise seeded with `seed + k`. */
export interface PolicySampleRequest {
  prompts: string[];
  negativePrompt: string;
  seed: number;
  numSteps: number;
  eta: number;
  guidanceScale: number;
  signal?: AbortSignal;
}

/** Sampled images with their whole denoising trajectories. */
export interface PolicySamples {
  images: ImageRGB[];
  /** The T denoising timesteps, high to low (the same for every image). */
  timesteps: number[];
  /** Per image: T + 1 latents `[T+1, C, H, W]` flattened; entry 0 is the initial noise. */
  latents: Float32Array[];
  /** Per image: T log-probabilities of its transitions (mean over C·H·W). */
  logProbs: number[][];
  /** `[C, h, w]` of one latent, when the policy says (the final latent of an image is the last C·h·w of its trajectory). */
  latentShape?: number[];
}

/** One micro-batch of one PPO step: each item at its own timestep (timesteps are shuffled per sample). */
export interface PolicyTrainRequest {
  prompts: string[];
  negativePrompt: string;
  timesteps: number[];
  latents: Float32Array[];
  nextLatents: Float32Array[];
  /** Log-probabilities at sampling time. */
  oldLogProbs: number[];
  /** Already clipped to ±train_adv_clip_max. */
  advantages: number[];
  numSteps: number;
  eta: number;
  guidanceScale: number;
  /** Classifier-free guidance during training, as during sampling (train_cfg). */
  cfg: boolean;
  clipRange: number;
  /** The loss is multiplied by this before its gradient is accumulated (1 / micro-steps per update). */
  lossScale: number;
}

/** Items to score with the training graph: a training request without the PPO terms. */
export type PolicyScoreRequest = Omit<PolicyTrainRequest, 'oldLogProbs' | 'advantages' | 'clipRange' | 'lossScale'>;

/** Batch means of the PPO quantities of one micro-step (unscaled). */
export interface PolicyTrainStats {
  loss: number;
  /** 0.5 · mean((log p - log p_old)²). */
  approxKl: number;
  /** Fraction of items with |ratio - 1| > clip range. */
  clipfrac: number;
  /** Per item: the log-probability the training computation found (offered by policies that offer `score`). */
  logProbs?: number[];
}

/** Everything a policy needs to continue exactly where it stopped: LoRA weights, optimizer moments, step count. */
export interface PolicyState {
  tensors: Map<string, SafeTensor>;
  meta: Record<string, unknown>;
}

/** A diffusion model with a trainable LoRA: samples with log-probs and takes PPO steps. */
export interface Policy {
  sample(req: PolicySampleRequest): Promise<PolicySamples>;
  /** Computes the clipped PPO loss of the batch and adds its (scaled) gradient to the accumulator. */
  accumulate(req: PolicyTrainRequest): Promise<PolicyTrainStats>;
  /**
   * Clips the accumulated gradient to `maxGradNorm`, takes one AdamW step and zeroes the accumulator.
   * A non-finite gradient norm leaves the weights untouched (`applied` false).
   */
  update(maxGradNorm: number): Promise<{ gradNorm: number; applied: boolean }>;
  /**
   * The log-probabilities of the items' transitions as `accumulate` computes them (the same graph, batch and
   * precision), without touching the gradient accumulator. Policies whose sampler and training computation differ in
   * rounding (float16 graphs) offer it, so PPO's old log-probabilities can come from the training computation
   * (train_old_log_probs); their `accumulate` returns these values too.
   */
  score?(req: PolicyScoreRequest): Promise<number[]>;
  saveState(): Promise<PolicyState>;
  loadState(state: PolicyState): Promise<void>;
  lora(): Promise<LoraWeights>;
  release?(): Promise<void>;
}

/** What every LoRA policy does besides its algorithm's training step: sample, step AdamW, save and restore its state. */
export type LoraPolicyBase = Pick<Policy, 'sample' | 'update' | 'saveState' | 'loadState' | 'lora' | 'release'>;

/**
 * B rated pairs of one step, each at its own noise level: the clean latents of the preferred and the rejected image
 * (scaled as the UNet sees them), noised with the same timestep and the same noise, as Diffusion-DPO trains them.
 */
export interface PreferenceBatch {
  prompts: string[];
  winners: Float32Array[];
  losers: Float32Array[];
  timesteps: number[];
  noise: Float32Array[];
}

/** The Diffusion-DPO quantities of one step (unscaled). */
export interface PreferenceStats {
  loss: number;
  /** Per pair: −β/2·((e_θ − e_ref)_w − (e_θ − e_ref)_l), e the per-pixel mean squared error. */
  margins: number[];
  /** Mean squared error of the policy's and of the reference's predictions over all rows. */
  modelMse: number;
  refMse: number;
}

/** What Diffusion-DPO needs to know of the model it trains. */
export interface PreferenceModelInfo {
  /** `[C, h, w]` of one latent. */
  latent: number[];
  /** Timesteps of the noise schedule (1000 for SD); training draws from [0, this). */
  numTrainTimesteps: number;
  /** Pairs per training-graph run (train_batch_size, or 1 for a UNet with one scalar timestep). */
  pairsPerRun: number;
  /** What the UNet predicts (the scheduler config's prediction_type); the loss's target follows it. */
  predictionType: 'epsilon' | 'v_prediction' | 'sample';
  /** True when the model folder has a VAE encoder (`encodeImages` works). */
  hasEncoder: boolean;
}

/** A diffusion model with a trainable LoRA that learns from rated pairs directly (Diffusion-DPO). */
export interface PreferencePolicy extends LoraPolicyBase {
  readonly model: PreferenceModelInfo;
  /** Computes the Diffusion-DPO loss of `pairsPerRun` pairs and adds its gradient, times `lossScale`, to the accumulator. */
  accumulatePreferences(batch: PreferenceBatch, beta: number, lossScale: number): Promise<PreferenceStats>;
  /**
   * Per row (the winners, then the losers) the mean squared error of the prediction at the batch's noise, with the
   * current LoRA or the base model ('base'); pairs may share a timestep. No gradient is touched.
   */
  predictionErrors(batch: PreferenceBatch, weights: 'current' | 'base'): Promise<Float64Array>;
  /** The latents the model's VAE encoder gives for images (scaled as the UNet sees them); only when `model.hasEncoder`. */
  encodeImages(images: ImageRGB[]): Promise<Float32Array[]>;
}

/** True for a policy that trains on rated pairs (Diffusion-DPO). */
export function isPreferencePolicy(p: LoraPolicyBase): p is PreferencePolicy {
  return typeof (p as PreferencePolicy).accumulatePreferences === 'function';
}

/** Progress of a run, for a CLI or the worker. */
export interface DdpoProgress {
  epoch: number;
  numEpochs: number;
  phase: 'eval' | 'sample' | 'reward' | 'train' | 'held_out' | 'checkpoint' | 'done';
  done: number;
  total: number;
}
