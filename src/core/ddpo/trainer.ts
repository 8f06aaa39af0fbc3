/** The DDPO loop's epoch: evaluate, sample, score, normalise advantages, PPO-update, judge approx_kl (runLoop.ts runs the epochs). */
import { globalAdvantages, meanStd, perPromptStats } from './advantages';
import type { DdpoConfig } from './config';
import { assertFinite, DivergenceWatch, divergenceMessage, type EpochStart, type KlSpike } from './guards';
import type { DdpoLayout } from './layout';
import { readMetrics, type EpochMetrics, type EvalImage } from './metrics';
import { trainEpoch, type OldLogProbSource, type TrainSummary } from './ppo';
import { checkpointEpoch, renderEvalImages, reportProgress, runEpochs, type EpochClock, type EpochOutcome, type LoopResult, type LoopRun, type StoppedEarly } from './runLoop';
import { sampleEpoch, uniformPrompts, type EpochSamples, type PromptSource } from './sampling';
import type { DdpoProgress, Policy, RewardFn } from './types';

/** Inputs of {@link runDdpo}. */
export interface DdpoRunOptions {
  config: DdpoConfig;
  layout: DdpoLayout;
  policy: Policy;
  reward: RewardFn;
  /** Training prompts (drawn uniformly) or a prompt function. */
  prompts: string[] | PromptSource;
  /** Continue from the newest checkpoint (or config.resume_from); without it an existing run is an error. */
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: DdpoProgress) => void;
  onLog?: (line: string) => void;
  /** Called with each epoch's metrics line once it is written. */
  onEpoch?: (m: EpochMetrics) => void;
}

/** What a finished (or stopped-early) run did; `stoppedEarly`: train_kl_guard stopped it, the policy holds the weights of `keptEpoch` (-1: the base model). */
export type DdpoRunResult = LoopResult<EpochMetrics>;

/** Runs epochs until num_epochs; a NaN/Inf throws NonFiniteError after recording it in status.json. */
export async function runDdpo(opts: DdpoRunOptions): Promise<DdpoRunResult> {
  const promptSource = Array.isArray(opts.prompts) ? uniformPrompts(opts.prompts) : opts.prompts;
  const evalPrompts = opts.config.eval_prompts.length ? opts.config.eval_prompts : Array.isArray(opts.prompts) ? opts.prompts.slice(0, 4) : [];
  return runEpochs<EpochMetrics, Run>(opts, {
    open: (run) => openRun(run, opts, promptSource, evalPrompts),
    epoch: (run, epoch, clock) => runEpoch(run, epoch, clock),
  });
}

// A run under way: the loop's state, its options and what DDPO carries over from one epoch to the next.
interface Run extends LoopRun<EpochMetrics> {
  ddpo: DdpoRunOptions;
  promptSource: PromptSource;
  evalPrompts: string[];
  watch: DivergenceWatch;
  // train_old_log_probs 'auto': once an epoch found the sampler's log-probabilities off, later ones rescore from the
  // start (a resumed run remembers it from metrics.jsonl)
  oldLogProbs?: OldLogProbSource;
  warnedClipBefore: boolean;
}

// What the epochs a resumed run already has say (none for a new run).
function openRun(run: LoopRun<EpochMetrics>, opts: DdpoRunOptions, promptSource: PromptSource, evalPrompts: string[]): Run {
  const earlier = readMetrics(opts.layout.metricsFile);
  return {
    ...run, ddpo: opts, promptSource, evalPrompts,
    // train_kl_guard knows the approx_kl of the epochs before this one (a resumed run's too)
    watch: new DivergenceWatch(opts.config.train_kl_guard, earlier.map((m) => m.approx_kl)),
    oldLogProbs: earlier.some((m) => m.old_log_probs === 'training_graph') ? 'training_graph' : undefined,
    warnedClipBefore: false,
  };
}

// One epoch: sample and train, judge its approx_kl (the verdict the loop checkpoints by), and hand on its line.
async function runEpoch(run: Run, epoch: number, clock: EpochClock): Promise<EpochOutcome<EpochMetrics>> {
  const c = run.opts.config;
  const start = run.watch.active ? await epochStart(run) : undefined;
  const { line, train } = await sampleAndTrain(run, epoch, clock);
  const verdict = run.watch.judge(epoch, train.approx_kl, start);
  if (verdict.median !== undefined) line.kl_guard = { median: verdict.median, factor: c.train_kl_guard };
  return {
    line, hold: verdict.diverged ? 'diverged' : verdict.suspect ? 'suspect' : undefined,
    summary: `epoch ${epoch}: reward ${line.reward_mean.toFixed(4)} ± ${line.reward_std.toFixed(4)}, kl ${train.approx_kl.toExponential(2)}, clipfrac ${train.clipfrac.toFixed(3)}, ${line.seconds.total.toFixed(1)} s`,
    after: async () => {
      run.ddpo.onEpoch?.(line);
      warnClipBeforeUpdate(run, epoch, train);
      return verdict.diverged ? await keepWeightsBeforeSpike(run, epoch, verdict.diverged.first, train.approx_kl, verdict.diverged.ratio) : undefined;
    },
  };
}

// The epoch's work up to its metrics line: evaluation images (every log_image_freq epochs), samples and their
// rewards, advantages, PPO.
async function sampleAndTrain(run: Run, epoch: number, clock: EpochClock): Promise<{ line: EpochMetrics; train: TrainSummary }> {
  const { ddpo: opts, rngs } = run;
  const c = opts.config;
  const seconds = { eval: 0, sample: 0, reward: 0, train: 0, checkpoint: 0, total: 0 };
  let evalImages: EvalImage[] | undefined;
  const evalCount = run.evalPrompts.length * c.eval_seeds.length;
  if (epoch % c.log_image_freq === 0 && evalCount > 0) {
    reportProgress(run, epoch, 'eval', 0, evalCount);
    evalImages = await renderEvalImages(opts, run.evalPrompts, epoch, run.globalStep, opts.reward);
  }
  seconds.eval = clock.lap();

  const rewardSeconds = { value: 0 };
  const samples = await sampleEpoch({
    config: c, policy: opts.policy, reward: opts.reward, promptSource: run.promptSource, promptRng: rngs.prompts, noiseRng: rngs.noise, epoch, globalStep: run.globalStep,
    signal: opts.signal, rewardSeconds, onBatch: (d, n) => reportProgress(run, epoch, 'sample', d, n),
  });
  seconds.reward = rewardSeconds.value;
  seconds.sample = clock.lap() - seconds.reward;

  const advantages = run.tracker ? run.tracker.update(samples.prompts, samples.rewards) : globalAdvantages(samples.rewards);
  assertFinite(advantages, 'advantage', epoch, run.globalStep, 'reward');
  const train = await trainEpoch({
    config: c, policy: opts.policy, shuffleRng: rngs.shuffle, epoch, globalStep: run.globalStep, oldLogProbs: run.oldLogProbs,
    signal: opts.signal, onStep: (d, n) => reportProgress(run, epoch, 'train', d, n),
  }, samples, advantages);
  followOldLogProbSource(run, epoch, train);
  run.globalStep = train.globalStep;
  seconds.train = clock.lap();
  return { line: epochLine(epoch, run.globalStep, samples, advantages, train, seconds, evalImages), train };
}

// The epoch's line of metrics.jsonl (kl_guard is added by the verdict).
function epochLine(epoch: number, globalStep: number, samples: EpochSamples, advantages: number[], train: TrainSummary, seconds: EpochMetrics['seconds'], evalImages: EvalImage[] | undefined): EpochMetrics {
  const rewardStats = meanStd(samples.rewards);
  const advStats = meanStd(advantages);
  return {
    epoch, global_step: globalStep, reward_mean: rewardStats.mean, reward_std: rewardStats.std,
    reward_per_prompt: perPromptStats(samples.prompts, samples.rewards),
    approx_kl: train.approx_kl, clipfrac: train.clipfrac, clipfrac_before_update: train.clipfrac_before_update, old_log_probs: train.old_log_probs,
    ...(train.logprob_mismatch !== undefined ? { logprob_mismatch: train.logprob_mismatch } : {}), loss: train.loss, grad_norm: train.grad_norm,
    advantage_mean: advStats.mean, advantage_std: advStats.std,
    seconds, ...(evalImages ? { eval: evalImages, eval_reward_mean: meanStd(evalImages.map((e) => e.reward)).mean } : {}),
    time: new Date().toISOString(),
  };
}

// Remembers where PPO's old log-probabilities came from; says once why 'auto' switched to the training graph's.
function followOldLogProbSource(run: Run, epoch: number, train: TrainSummary): void {
  const c = run.opts.config;
  if (train.old_log_probs === 'training_graph' && !run.oldLogProbs && c.train_old_log_probs === 'auto') {
    run.log(`epoch ${epoch}: the sampler's log-probabilities differ from the training graph's by up to ${train.logprob_mismatch?.toExponential(1)} though the ` +
      `LoRA had not changed, more than train_clip_range ${c.train_clip_range} (float16 rounds differently in the two graphs), so PPO would clip ` +
      'transitions that never moved. From here on PPO compares against the training graph\'s own log-probabilities, scored before each ' +
      'epoch\'s first optimizer step (one more graph run for each transition trained after it; train_old_log_probs "sampler" keeps TRL\'s behaviour).');
  }
  if (train.old_log_probs === 'training_graph') run.oldLogProbs = 'training_graph';
}

// Warns once when PPO clipped items before the first optimizer step: the two graphs' rounding differs.
function warnClipBeforeUpdate(run: Run, epoch: number, train: TrainSummary): void {
  if (!(train.clipfrac_before_update > 0) || run.warnedClipBefore) return;
  run.warnedClipBefore = true;
  run.log(`warning: epoch ${epoch}: ${(100 * train.clipfrac_before_update).toFixed(0)}% of the items PPO trained before the first optimizer step were ` +
    `already clipped, though the LoRA had not changed since sampling: the training graph recomputes the sampler's log-probabilities ` +
    `differently (by up to ${train.logprob_mismatch?.toExponential(1)}), more than train_clip_range ${run.opts.config.train_clip_range} (float16 rounding differs between the two graphs), so clipping ` +
    'also removes gradient that was never off-policy. train_old_log_probs "auto" or "training_graph" (old log-probabilities from the ' +
    'training graph), a larger train_clip_range, or mixed_precision "no" (float32) avoids it.');
}

async function epochStart(run: Run): Promise<EpochStart> {
  return { policy: await run.opts.policy.saveState(), rng: run.rngs.state(), tracker: run.tracker?.state() ?? null, globalStep: run.globalStep };
}

// Keeps (and checkpoints) the weights the first spiking epoch started from, and says why the run stops.
async function keepWeightsBeforeSpike(run: Run, epoch: number, first: KlSpike, approxKl: number, ratio: number): Promise<StoppedEarly> {
  const { policy, config: c } = run.opts;
  const kept = first.start;
  await policy.loadState(kept.policy);
  run.globalStep = kept.globalStep;
  if (first.epoch > 0) await checkpointEpoch(run, first.epoch - 1, kept.globalStep, kept.rng, kept.tracker, kept.policy);
  const message = divergenceMessage(c, epoch, first, approxKl, ratio);
  run.log(message);
  return { epoch, keptEpoch: first.epoch - 1, message };
}


