/** The training half of a DDPO epoch: PPO-clipped updates over shuffled samples and timesteps. */
import type { GaussianRng } from '../diffusion/rng';
import { DdpoConfig, numTrainTimesteps, timestepsPerRun } from './config';
import { assertFinite, namingMemorySetting, NonFiniteError } from './guards';
import { randperm } from './random';
import type { EpochSamples } from './sampling';
import type { Policy, PolicyTrainStats } from './types';

/** Means over the epoch's micro-steps (loss, KL, clip fraction) and optimizer steps (grad norm). */
export interface TrainSummary {
  loss: number;
  approx_kl: number;
  clipfrac: number;
  grad_norm: number;
  /**
   * Clip fraction of the micro-steps before the epoch's first optimizer step, where the LoRA is still the sampler's:
   * above 0 only when the training graph recomputes the sampler's log-probabilities differently by more than
   * train_clip_range (float16 rounding in different graphs), so PPO clips items that have not moved.
   */
  clipfrac_before_update: number;
  globalStep: number;
}

/** Context of the training phase. */
export interface TrainContext {
  config: DdpoConfig;
  policy: Policy;
  shuffleRng: GaussianRng;
  epoch: number;
  globalStep: number;
  signal?: AbortSignal;
  onStep?: (done: number, total: number) => void;
}

/**
 * num_inner_epochs passes: shuffle samples, shuffle each sample's timesteps (or, with train_timestep_selection
 * 'earliest', keep them in sampling order), cut into batches of train_batch_size and, for the first
 * int(T·timestep_fraction) timesteps, accumulate the PPO loss;
 * one optimizer step per train_gradient_accumulation_steps batches × those timesteps (as TRL).
 * With train_timesteps_per_run K, K consecutive micro-steps (the batch at its next K timesteps) are one policy call.
 */
export async function trainEpoch(ctx: TrainContext, samples: EpochSamples, advantages: number[]): Promise<TrainSummary> {
  const c = ctx.config;
  const N = samples.latents.length;
  const T = samples.timesteps.length;
  const tTrain = numTrainTimesteps(c);
  if (tTrain > T) throw new Error(`train_timestep_fraction asks for ${tTrain} timesteps but samples have ${T}`);
  const D = samples.latents[0].length / (T + 1);
  const microPerUpdate = c.train_gradient_accumulation_steps * tTrain;
  const K = timestepsPerRun(c);
  const clipped = advantages.map((a) => Math.min(c.train_adv_clip_max, Math.max(-c.train_adv_clip_max, a)));
  const sums = { loss: 0, approx_kl: 0, clipfrac: 0, grad_norm: 0, micro: 0, updates: 0, clipBefore: 0, microBefore: 0 };
  let globalStep = ctx.globalStep;
  const totalMicro = c.num_inner_epochs * (N / c.train_batch_size) * tTrain;
  for (let inner = 0; inner < c.num_inner_epochs; inner++) {
    const order = randperm(ctx.shuffleRng, N);
    // Drawn for 'earliest' too, so the shuffle stream (and every later epoch) is the same under either selection.
    const drawn = order.map(() => randperm(ctx.shuffleRng, T));
    const timeOrder = c.train_timestep_selection === 'earliest' ? drawn.map(() => Array.from({ length: T }, (_, t) => t)) : drawn;
    for (let start = 0; start < N; start += c.train_batch_size) {
      const pos = Array.from({ length: Math.min(c.train_batch_size, N - start) }, (_, k) => start + k);
      for (let j = 0; j < tTrain; j += K) {
        ctx.signal?.throwIfAborted();
        // micro-step k of this run: the batch's items at their (j+k)-th timestep; a run never crosses an update, as K | tTrain
        const runPos = Array.from({ length: K }, () => pos).flat();
        const steps = runPos.map((p, i) => timeOrder[p][j + Math.floor(i / pos.length)]);
        const runItems = runPos.map((p) => order[p]);
        // out of memory with K > 1: fewer timesteps per run is the cheaper cure (it changes only speed)
        const [setting, value] = K > 1 ? ['train_timesteps_per_run', K] : ['train_batch_size', c.train_batch_size];
        const stats: PolicyTrainStats = await namingMemorySetting('train', setting, value, () => ctx.policy.accumulate({
          prompts: runItems.map((n) => samples.prompts[n]),
          negativePrompt: c.negative_prompts,
          timesteps: steps.map((s) => samples.timesteps[s]),
          latents: runItems.map((n, k) => samples.latents[n].subarray(steps[k] * D, (steps[k] + 1) * D)),
          nextLatents: runItems.map((n, k) => samples.latents[n].subarray((steps[k] + 1) * D, (steps[k] + 2) * D)),
          oldLogProbs: runItems.map((n, k) => samples.logProbs[n][steps[k]]),
          advantages: runItems.map((n) => clipped[n]),
          numSteps: c.sample_num_steps,
          eta: c.sample_eta,
          guidanceScale: c.sample_guidance_scale,
          cfg: c.train_cfg,
          clipRange: c.train_clip_range,
          // the policy's loss is the mean over its K·B items; K micro-steps of 1/microPerUpdate each sum to this
          lossScale: K / microPerUpdate,
        }));
        assertFinite([stats.loss], 'loss', ctx.epoch, globalStep, 'train');
        assertFinite([stats.approxKl], 'approx_kl', ctx.epoch, globalStep, 'train');
        // the run's means are the means of its K equal-sized micro-steps: weigh them K times
        sums.loss += stats.loss * K;
        sums.approx_kl += stats.approxKl * K;
        sums.clipfrac += stats.clipfrac * K;
        sums.micro += K;
        // before the first update the LoRA is the sampler's: every ratio is 1 up to float rounding
        if (sums.updates === 0) { sums.clipBefore += stats.clipfrac * K; sums.microBefore += K; }
        if (sums.micro % microPerUpdate === 0) {
          const { gradNorm, applied } = await ctx.policy.update(c.train_max_grad_norm);
          if (!applied || !Number.isFinite(gradNorm)) throw new NonFiniteError(ctx.epoch, globalStep, 'train', `gradient norm (${gradNorm})`);
          sums.grad_norm += gradNorm;
          sums.updates++;
          globalStep++;
        }
        ctx.onStep?.(sums.micro, totalMicro);
      }
    }
  }
  return {
    loss: sums.loss / sums.micro,
    approx_kl: sums.approx_kl / sums.micro,
    clipfrac: sums.clipfrac / sums.micro,
    grad_norm: sums.updates ? sums.grad_norm / sums.updates : 0,
    clipfrac_before_update: sums.microBefore ? sums.clipBefore / sums.microBefore : 0,
    globalStep,
  };
}
