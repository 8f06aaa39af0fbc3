/** The training half of a DDPO epoch: PPO-clipped updates over shuffled samples and timesteps. */
import type { GaussianRng } from '../diffusion/rng';
import { DdpoConfig, numTrainTimesteps, timestepsPerRun } from './config';
import { assertFinite, namingMemorySetting, NonFiniteError } from './guards';
import { randperm } from './random';
import type { EpochSamples } from './sampling';
import type { Policy, PolicyScoreRequest, PolicyTrainStats } from './types';

/** Where an epoch's PPO old log-probabilities came from (see train_old_log_probs). */
export type OldLogProbSource = 'sampler' | 'training_graph';

/** Means over the epoch's micro-steps (loss, KL, clip fraction) and optimizer steps (grad norm). */
export interface TrainSummary {
  loss: number;
  approx_kl: number;
  clipfrac: number;
  grad_norm: number;
  /**
   * Clip fraction of the micro-steps before the epoch's first optimizer step, where the LoRA is still the sampler's.
   * Only train_old_log_probs "sampler" clips there (TRL): above 0 when the training graph recomputes the sampler's
   * log-probabilities differently by more than train_clip_range (float16 rounding in different graphs), so PPO clips
   * items that have not moved. The other modes train those micro-steps unclipped: 0.
   */
  clipfrac_before_update: number;
  /** Where the old log-probabilities of the micro-steps after the first optimizer step came from. */
  old_log_probs: OldLogProbSource;
  /** The largest |training graph − sampler| log-probability difference seen: trained before the first optimizer step, or scored (when the policy reports them). */
  logprob_mismatch?: number;
  globalStep: number;
}

/** Context of the training phase. */
export interface TrainContext {
  config: DdpoConfig;
  policy: Policy;
  shuffleRng: GaussianRng;
  epoch: number;
  globalStep: number;
  /** Under train_old_log_probs 'auto': 'training_graph' once an earlier epoch found the mismatch. */
  oldLogProbs?: OldLogProbSource;
  signal?: AbortSignal;
  onStep?: (done: number, total: number) => void;
}

/**
 * train_num_inner_epochs passes: shuffle samples, shuffle each sample's timesteps (or, with train_timestep_selection
 * 'earliest', keep them in sampling order), cut into batches of train_batch_size and, for the first
 * int(T·timestep_fraction) timesteps, accumulate the PPO loss;
 * one optimizer step per train_gradient_accumulation_steps batches × those timesteps (as TRL).
 * With train_timesteps_per_run K, K consecutive micro-steps (the batch at its next K timesteps) are one policy call.
 *
 * Old log-probabilities (train_old_log_probs): before the first optimizer step the LoRA is the sampler's, so the PPO
 * ratio is 1 but for rounding. Except under 'sampler' (TRL), those micro-steps train unclipped and record the
 * training graph's own log-probabilities; then, still before the update, every other transition the epoch trains is
 * scored by the training graph ('training_graph', or 'auto' once the sampler's values turn out off by more than the
 * clip range), and later micro-steps compare against the training graph's values.
 */
export async function trainEpoch(ctx: TrainContext, samples: EpochSamples, advantages: number[]): Promise<TrainSummary> {
  const c = ctx.config;
  const N = samples.latents.length;
  const T = samples.timesteps.length;
  const tTrain = numTrainTimesteps(c);
  if (tTrain > T) throw new Error(`train_timestep_fraction asks for ${tTrain} timesteps but samples have ${T}`);
  const microPerUpdate = c.train_gradient_accumulation_steps * tTrain;
  const K = timestepsPerRun(c);
  const old = new OldLogProbs(ctx, samples);
  const passes = drawPasses(ctx, N, T);
  const clipped = advantages.map((a) => Math.min(c.train_adv_clip_max, Math.max(-c.train_adv_clip_max, a)));
  const sums = { loss: 0, approx_kl: 0, clipfrac: 0, grad_norm: 0, micro: 0, updates: 0, clipBefore: 0, microBefore: 0 };
  let globalStep = ctx.globalStep;
  const trained = trainedTransitions(passes, T, tTrain);
  const progress = new EpochProgress(ctx.onStep, c.train_num_inner_epochs * (N / c.train_batch_size) * tTrain, c.train_batch_size * K, K,
    old.scoresFromStart ? trained.size - c.train_gradient_accumulation_steps * c.train_batch_size * tTrain : 0);
  for (const { items, steps } of graphRuns(passes, c.train_batch_size, tTrain, K)) {
    ctx.signal?.throwIfAborted();
    const first = sums.updates === 0;
    // the policy's loss is the mean over its K·B items; K micro-steps of 1/microPerUpdate each sum to this
    const stats = await trainRun(ctx, samples, items, steps, { old: old.values, advantages: clipped, clipRange: old.clipRange(first), lossScale: K / microPerUpdate }, globalStep);
    if (first) old.record(items, steps, stats.logProbs);
    // the run's means are the means of its K equal-sized micro-steps: weigh them K times
    sums.loss += stats.loss * K;
    sums.approx_kl += stats.approxKl * K;
    sums.clipfrac += stats.clipfrac * K;
    sums.micro += K;
    if (first) { sums.clipBefore += stats.clipfrac * K; sums.microBefore += K; }
    progress.trained(sums.micro);
    if (sums.micro % microPerUpdate === 0) {
      if (first) await old.beforeFirstUpdate(trained, progress, sums.micro);
      sums.grad_norm += await optimizerStep(ctx, globalStep);
      sums.updates++;
      globalStep++;
    }
  }
  return {
    loss: sums.loss / sums.micro,
    approx_kl: sums.approx_kl / sums.micro,
    clipfrac: sums.clipfrac / sums.micro,
    grad_norm: sums.updates ? sums.grad_norm / sums.updates : 0,
    clipfrac_before_update: sums.microBefore ? sums.clipBefore / sums.microBefore : 0,
    old_log_probs: old.source,
    ...(old.mismatch !== undefined ? { logprob_mismatch: old.mismatch } : {}),
    globalStep,
  };
}

// One pass's sample order and each sample's timestep order.
interface Pass { order: number[]; timeOrder: number[][] }

// Every pass's shuffles, drawn up front: nothing else reads the shuffle stream, so it is consumed as pass by pass.
function drawPasses(ctx: TrainContext, N: number, T: number): Pass[] {
  const c = ctx.config;
  return Array.from({ length: c.train_num_inner_epochs }, () => {
    const order = randperm(ctx.shuffleRng, N);
    // Drawn for 'earliest' too, so the shuffle stream (and every later epoch) is the same under either selection.
    const drawn = order.map(() => randperm(ctx.shuffleRng, T));
    return { order, timeOrder: c.train_timestep_selection === 'earliest' ? drawn.map(() => Array.from({ length: T }, (_, t) => t)) : drawn };
  });
}

// Every transition some pass trains, once, keyed n·T + t: [sample n, timestep index t].
function trainedTransitions(passes: Pass[], T: number, tTrain: number): Map<number, [number, number]> {
  const trained = new Map<number, [number, number]>();
  for (const { order, timeOrder } of passes) order.forEach((n, q) => timeOrder[q].slice(0, tTrain).forEach((t) => trained.set(n * T + t, [n, t])));
  return trained;
}

// The epoch's training-graph runs in order: per pass, batches of `batchSize` shuffled samples, each at its first
// tTrain shuffled timesteps, K at a time.
function* graphRuns(passes: Pass[], batchSize: number, tTrain: number, K: number): Generator<{ items: number[]; steps: number[] }> {
  for (const { order, timeOrder } of passes) {
    const N = order.length;
    for (let start = 0; start < N; start += batchSize) {
      const pos = Array.from({ length: Math.min(batchSize, N - start) }, (_, k) => start + k);
      for (let j = 0; j < tTrain; j += K) {
        // micro-step k of this run: the batch's items at their (j+k)-th timestep; a run never crosses an update, as K | tTrain
        const runPos = Array.from({ length: K }, () => pos).flat();
        yield { items: runPos.map((q) => order[q]), steps: runPos.map((q, i) => timeOrder[q][j + Math.floor(i / pos.length)]) };
      }
    }
  }
}

// One training-graph run: the PPO loss of items `items` at timestep indices `steps`, its gradient accumulated.
async function trainRun(ctx: TrainContext, samples: EpochSamples, items: number[], steps: number[],
  ppo: { old: number[][]; advantages: number[]; clipRange: number; lossScale: number }, globalStep: number): Promise<PolicyTrainStats> {
  const c = ctx.config;
  const stats = await namingMemorySetting('train', ...runSetting(c), () => ctx.policy.accumulate({
    ...transitions(c, samples, items, steps),
    oldLogProbs: items.map((n, k) => ppo.old[n][steps[k]]),
    advantages: items.map((n) => ppo.advantages[n]),
    clipRange: ppo.clipRange,
    lossScale: ppo.lossScale,
  }));
  assertFinite([stats.loss], 'loss', ctx.epoch, globalStep, 'train');
  assertFinite([stats.approxKl], 'approx_kl', ctx.epoch, globalStep, 'train');
  return stats;
}

// One AdamW step on the accumulated gradient; returns its norm.
async function optimizerStep(ctx: TrainContext, globalStep: number): Promise<number> {
  const { gradNorm, applied } = await ctx.policy.update(ctx.config.train_max_grad_norm);
  if (!applied || !Number.isFinite(gradNorm)) throw new NonFiniteError(ctx.epoch, globalStep, 'train', `gradient norm (${gradNorm})`);
  return gradNorm;
}

// The epoch's progress in micro-steps. A scoring run counts like a training run of K micro-steps; scoring known to
// come is counted from the start.
class EpochProgress {
  private total: number;
  // progress units spent scoring
  private scored = 0;

  constructor(private readonly onStep: TrainContext['onStep'], private readonly trainUnits: number, private readonly B: number, private readonly K: number, expectedScoring: number) {
    this.total = trainUnits + this.scoringUnits(expectedScoring);
  }

  trained(micro: number): void {
    this.onStep?.(this.scored + micro, this.total);
  }

  // Runs `score` over `transitions` transitions after `micro` trained micro-steps, reporting each scoring run.
  async scoring<R>(transitions: number, micro: number, score: (onScored: (units: number) => void) => Promise<R>): Promise<R> {
    this.total = this.trainUnits + this.scoringUnits(transitions);
    const r = await score((k) => this.onStep?.(this.scored + micro + k, this.total));
    this.scored += this.scoringUnits(transitions);
    return r;
  }

  private scoringUnits(transitions: number): number {
    return Math.ceil(transitions / this.B) * this.K;
  }
}

// PPO's old log-probabilities over one epoch (train_old_log_probs): the sampler's, or the training graph's own.
class OldLogProbs {
  // Except under 'sampler' (TRL), the micro-steps before the first update train unclipped and record the training
  // graph's own values.
  private readonly ownFirst: boolean;
  // scoring decided before any run: 'training_graph', or 'auto' after an earlier epoch found the mismatch
  private readonly scoreKnown: boolean;
  // the training graph's log-probabilities of the transitions trained before the first update, by sample
  private readonly own: Map<number, number>[];
  values: number[][];
  source: OldLogProbSource = 'sampler';
  mismatch: number | undefined;

  constructor(private readonly ctx: TrainContext, private readonly samples: EpochSamples) {
    const mode = ctx.config.train_old_log_probs ?? 'auto';
    const canScore = !!ctx.policy.score;
    if (mode === 'training_graph' && !canScore) throw new Error('train_old_log_probs "training_graph": this policy cannot score transitions with its training computation');
    this.ownFirst = mode !== 'sampler' && canScore;
    this.scoreKnown = mode === 'training_graph' || ctx.oldLogProbs === 'training_graph';
    this.own = Array.from({ length: samples.latents.length }, () => new Map<number, number>());
    this.values = samples.logProbs;
  }

  // Whether the epoch will score before its first update whatever the sampler's values turn out to be.
  get scoresFromStart(): boolean {
    return this.ownFirst && this.scoreKnown;
  }

  clipRange(first: boolean): number {
    return first && this.ownFirst ? Infinity : this.ctx.config.train_clip_range;
  }

  // The training graph's values of a run before the first update (when the policy reports them).
  record(items: number[], steps: number[], logProbs: number[] | undefined): void {
    logProbs?.forEach((lp, k) => {
      this.own[items[k]].set(steps[k], lp);
      this.mismatch = Math.max(this.mismatch ?? 0, Math.abs(lp - this.samples.logProbs[items[k]][steps[k]]));
    });
  }

  // Before the first update: the training graph scores every other transition the epoch trains, when that was
  // decided or the sampler's values turned out off by more than the clip range.
  async beforeFirstUpdate(trained: Map<number, [number, number]>, progress: EpochProgress, micro: number): Promise<void> {
    if (!this.ownFirst) return;
    // the sampler's values are off by more than the clip range: PPO would clip transitions that never moved
    const off = this.mismatch !== undefined && Math.expm1(this.mismatch) > this.ctx.config.train_clip_range;
    if (!this.scoreKnown && !off) return;
    // the trained transitions whose training-graph values are not known yet
    const todo = [...trained.values()].filter(([n, t]) => !this.own[n].has(t));
    this.values = await progress.scoring(todo.length, micro, (onScored) => this.rescored(todo, onScored));
    for (const [n, t] of todo) this.mismatch = Math.max(this.mismatch ?? 0, Math.abs(this.values[n][t] - this.samples.logProbs[n][t]));
    this.source = 'training_graph';
  }

  // The sampler's log-probabilities with the training graph's in their place: those recorded in `own` and those of
  // the transitions `todo`, scored in runs of B items (the last padded with repeats of its first, whose scores are dropped).
  private async rescored(todo: [number, number][], onScored: (micro: number) => void): Promise<number[][]> {
    const { ctx, samples } = this;
    const out = samples.logProbs.map((lp, n) => lp.map((v, t) => this.own[n].get(t) ?? v));
    const c = ctx.config;
    const K = timestepsPerRun(c);
    const B = c.train_batch_size * K;
    for (let i = 0; i < todo.length; i += B) {
      ctx.signal?.throwIfAborted();
      const run = todo.slice(i, i + B);
      while (run.length < B) run.push(run[0]);
      const items = run.map(([n]) => n), steps = run.map(([, t]) => t);
      const lp = await namingMemorySetting('train', ...runSetting(c), () => ctx.policy.score!(transitions(c, samples, items, steps)));
      assertFinite(lp, 'log-probability', ctx.epoch, ctx.globalStep, 'train');
      for (let k = 0; k < Math.min(B, todo.length - i); k++) out[items[k]][steps[k]] = lp[k];
      onScored((i / B + 1) * K);
    }
    return out;
  }
}

// The setting an out-of-memory error in a training-graph run names: with K > 1 timesteps per run, fewer is the
// cheaper cure (it changes only speed).
function runSetting(c: DdpoConfig): [string, number] {
  const K = timestepsPerRun(c);
  return K > 1 ? ['train_timesteps_per_run', K] : ['train_batch_size', c.train_batch_size];
}

// What a training or scoring request says about items `runItems` at timestep indices `steps`.
function transitions(c: DdpoConfig, samples: EpochSamples, runItems: number[], steps: number[]): PolicyScoreRequest {
  const D = samples.latents[0].length / (samples.timesteps.length + 1);
  return {
    prompts: runItems.map((n) => samples.prompts[n]),
    negativePrompt: c.negative_prompts,
    timesteps: steps.map((s) => samples.timesteps[s]),
    latents: runItems.map((n, k) => samples.latents[n].subarray(steps[k] * D, (steps[k] + 1) * D)),
    nextLatents: runItems.map((n, k) => samples.latents[n].subarray((steps[k] + 1) * D, (steps[k] + 2) * D)),
    numSteps: c.sample_num_steps,
    eta: c.sample_eta,
    guidanceScale: c.sample_guidance_scale,
    cfg: c.train_cfg,
  };
}
