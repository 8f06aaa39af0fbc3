/** The DDPO loop: per epoch evaluate, sample, score, normalise advantages, PPO-update, log, checkpoint. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crashPoint } from '../crashPoint';
import { appendLineDurable, atomicWriteFile } from '../fsutil';
import { encodePng } from '../image/png';
import type { ImageRGB } from '../image/rgb';
import { globalAdvantages, meanStd, perPromptStats } from './advantages';
import { saveCheckpoint, type LoopState } from './checkpoint';
import type { DdpoConfig } from './config';
import { assertFinite, DivergenceWatch, divergenceMessage, NonFiniteError, type EpochStart, type KlSpike } from './guards';
import { DdpoLayout, evalDirOf } from './layout';
import { EpochMetrics, EvalImage, jsonSafe, readMetrics } from './metrics';
import { trainEpoch, type OldLogProbSource, type TrainSummary } from './ppo';
import { startOrResume, type RunStart } from './resume';
import { EpochSamples, PromptSource, sampleEpoch, uniformPrompts } from './sampling';
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

/** What a finished (or stopped-by-signal) run did. */
export interface DdpoRunResult {
  firstEpoch: number;
  lastEpoch: number;
  metrics: EpochMetrics[];
  /** Set when train_kl_guard stopped the run: the policy holds the weights of `keptEpoch` (-1: the base model). */
  stoppedEarly?: { epoch: number; keptEpoch: number; message: string };
}

type StoppedEarly = NonNullable<DdpoRunResult['stoppedEarly']>;

/** Runs epochs until num_epochs; a NaN/Inf throws NonFiniteError after recording it in status.json. */
export async function runDdpo(opts: DdpoRunOptions): Promise<DdpoRunResult> {
  const c = opts.config;
  await fs.promises.mkdir(opts.layout.runDir, { recursive: true });
  const run = await openRun(opts);
  let epoch = run.firstEpoch;
  let stoppedEarly: StoppedEarly | undefined;
  try {
    for (; epoch < c.num_epochs; epoch++) {
      stoppedEarly = await runEpoch(run, epoch);
      if (stoppedEarly) break;
    }
    await finish(run, stoppedEarly);
  } catch (e) {
    await recordFailure(run, epoch, e);
    throw e;
  }
  return { firstEpoch: run.firstEpoch, lastEpoch: stoppedEarly?.keptEpoch ?? c.num_epochs - 1, metrics: run.metrics, ...(stoppedEarly ? { stoppedEarly } : {}) };
}

// A run under way: its options and what carries over from one epoch to the next.
interface Run extends RunStart {
  opts: DdpoRunOptions;
  log: (line: string) => void;
  promptSource: PromptSource;
  evalPrompts: string[];
  watch: DivergenceWatch;
  // train_old_log_probs 'auto': once an epoch found the sampler's log-probabilities off, later ones rescore from the
  // start (a resumed run remembers it from metrics.jsonl)
  oldLogProbs?: OldLogProbSource;
  warnedClipBefore: boolean;
  // the save after the previous epoch, reported in this epoch's line
  lastCheckpointSeconds: number;
  metrics: EpochMetrics[];
}

// Starts or resumes the run and reads what the epochs it already has say (none for a new run).
async function openRun(opts: DdpoRunOptions): Promise<Run> {
  const c = opts.config;
  const log = opts.onLog ?? (() => undefined);
  const promptSource = Array.isArray(opts.prompts) ? uniformPrompts(opts.prompts) : opts.prompts;
  const evalPrompts = c.eval_prompts.length ? c.eval_prompts : Array.isArray(opts.prompts) ? opts.prompts.slice(0, 4) : [];
  const start = await startOrResume({ config: c, layout: opts.layout, policy: opts.policy, resume: opts.resume, log });
  const earlier = readMetrics(opts.layout.metricsFile);
  return {
    ...start, opts, log, promptSource, evalPrompts,
    // train_kl_guard knows the approx_kl of the epochs before this one (a resumed run's too)
    watch: new DivergenceWatch(c.train_kl_guard, earlier.map((m) => m.approx_kl)),
    oldLogProbs: earlier.some((m) => m.old_log_probs === 'training_graph') ? 'training_graph' : undefined,
    warnedClipBefore: false,
    lastCheckpointSeconds: 0,
    metrics: [],
  };
}

// One epoch: sample and train, judge its approx_kl, write its metrics line and checkpoint. Returns how the run
// stopped early, if this epoch stopped it.
async function runEpoch(run: Run, epoch: number): Promise<StoppedEarly | undefined> {
  const c = run.opts.config;
  await writeStatus(run.opts.layout, 'running', { epoch, global_step: run.globalStep });
  const start = run.watch.active ? await epochStart(run) : undefined;
  const clock = epochClock();
  const { line, train } = await sampleAndTrain(run, epoch, clock);
  crashPoint('epoch-trained');
  const verdict = run.watch.judge(epoch, train.approx_kl, start);
  if (verdict.median !== undefined) line.kl_guard = { median: verdict.median, factor: c.train_kl_guard };
  // A suspect epoch is checkpointed only as the last (no epoch follows to confirm it).
  const last = epoch === c.num_epochs - 1;
  const saveNow = !verdict.diverged && (!verdict.suspect || last) && ((epoch + 1) % c.save_freq === 0 || last);
  await recordEpoch(run, epoch, line, saveNow, clock);
  warnClipBeforeUpdate(run, epoch, train);
  run.log(`epoch ${epoch}: reward ${line.reward_mean.toFixed(4)} ± ${line.reward_std.toFixed(4)}, kl ${train.approx_kl.toExponential(2)}, clipfrac ${train.clipfrac.toFixed(3)}, ${line.seconds.total.toFixed(1)} s` + (saveNow ? `, checkpoint ${run.lastCheckpointSeconds.toFixed(1)} s` : ''));
  return verdict.diverged ? await keepWeightsBeforeSpike(run, epoch, verdict.diverged.first, train.approx_kl, verdict.diverged.ratio) : undefined;
}

// The epoch's work up to its metrics line: evaluation images (every log_image_freq epochs), samples and their
// rewards, advantages, PPO.
async function sampleAndTrain(run: Run, epoch: number, clock: EpochClock): Promise<{ line: EpochMetrics; train: TrainSummary }> {
  const { opts, rngs } = run;
  const c = opts.config;
  const seconds = { eval: 0, sample: 0, reward: 0, train: 0, checkpoint: 0, total: 0 };
  let evalImages: EvalImage[] | undefined;
  const evalCount = run.evalPrompts.length * c.eval_seeds.length;
  if (epoch % c.log_image_freq === 0 && evalCount > 0) {
    progress(run, epoch, 'eval', 0, evalCount);
    evalImages = await evaluate(opts, run.evalPrompts, epoch, run.globalStep);
  }
  seconds.eval = clock.lap();

  const rewardSeconds = { value: 0 };
  const samples = await sampleEpoch({
    config: c, policy: opts.policy, reward: opts.reward, promptSource: run.promptSource, promptRng: rngs.prompts, noiseRng: rngs.noise, epoch, globalStep: run.globalStep,
    signal: opts.signal, rewardSeconds, onBatch: (d, n) => progress(run, epoch, 'sample', d, n),
  });
  seconds.reward = rewardSeconds.value;
  seconds.sample = clock.lap() - seconds.reward;

  const advantages = run.tracker ? run.tracker.update(samples.prompts, samples.rewards) : globalAdvantages(samples.rewards);
  assertFinite(advantages, 'advantage', epoch, run.globalStep, 'reward');
  const train = await trainEpoch({
    config: c, policy: opts.policy, shuffleRng: rngs.shuffle, epoch, globalStep: run.globalStep, oldLogProbs: run.oldLogProbs,
    signal: opts.signal, onStep: (d, n) => progress(run, epoch, 'train', d, n),
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

// Writes the epoch's metrics line, then (saveNow) its checkpoint, and hands the line on.
async function recordEpoch(run: Run, epoch: number, line: EpochMetrics, saveNow: boolean, clock: EpochClock): Promise<void> {
  const { opts } = run;
  const c = opts.config;
  line.seconds.checkpoint = run.lastCheckpointSeconds;
  line.seconds.total = clock.total();
  // The metrics line goes first: a kill before the checkpoint is complete re-runs this epoch and rewrites it.
  await appendLineDurable(opts.layout.metricsFile, JSON.stringify(jsonSafe(line)));
  crashPoint('epoch-logged');
  if (saveNow) {
    progress(run, epoch, 'checkpoint', 0, 1);
    await saveCheckpoint(opts.layout.checkpointsDir, loopState(c, epoch, run.globalStep, run.rngs.state(), run.tracker?.state() ?? null), await opts.policy.saveState(), await opts.policy.lora(), c.num_checkpoint_limit);
    run.lastCheckpointSeconds = clock.lap();
  } else run.lastCheckpointSeconds = 0;
  run.metrics.push(line);
  opts.onEpoch?.(line);
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
  const { policy, layout, config: c } = run.opts;
  const kept = first.start;
  await policy.loadState(kept.policy);
  run.globalStep = kept.globalStep;
  if (first.epoch > 0) await saveCheckpoint(layout.checkpointsDir, loopState(c, first.epoch - 1, kept.globalStep, kept.rng, kept.tracker), kept.policy, await policy.lora(), c.num_checkpoint_limit);
  const message = divergenceMessage(c, epoch, first, approxKl, ratio);
  run.log(message);
  return { epoch, keptEpoch: first.epoch - 1, message };
}

function loopState(c: DdpoConfig, epoch: number, globalStep: number, rng: LoopState['rng'], statTracker: LoopState['statTracker']): LoopState {
  return { format: 1, epoch, globalStep, rng, statTracker, config: c, savedAt: new Date().toISOString() };
}

// status.json and the last progress of a run that finished or stopped early.
async function finish(run: Run, stoppedEarly: StoppedEarly | undefined): Promise<void> {
  const c = run.opts.config;
  await writeStatus(run.opts.layout, 'done', stoppedEarly
    ? { epoch: stoppedEarly.keptEpoch, global_step: run.globalStep, stopped_early: true, message: stoppedEarly.message }
    : { epoch: c.num_epochs - 1, global_step: run.globalStep });
  progress(run, stoppedEarly?.epoch ?? c.num_epochs - 1, 'done', 1, 1);
}

// status.json after an error: 'stopped' when the signal aborted the run, else 'failed'.
async function recordFailure(run: Run, epoch: number, e: unknown): Promise<void> {
  const stopped = run.opts.signal?.aborted === true;
  await writeStatus(run.opts.layout, stopped ? 'stopped' : 'failed', {
    epoch, global_step: run.globalStep, message: (e as Error).message,
    ...(e instanceof NonFiniteError ? { global_step: e.step, phase: e.phase, what: e.what } : {}),
  }).catch(() => undefined);
}

// pid and host let a reader tell a "running" run whose process is gone (see src/core/studio/runState.ts).
function writeStatus(layout: DdpoLayout, state: string, extra: Record<string, unknown> = {}): Promise<void> {
  return atomicWriteFile(layout.statusFile, JSON.stringify({ state, pid: process.pid, host: os.hostname(), updated: new Date().toISOString(), ...extra }, null, 1) + '\n');
}

function progress(run: Run, epoch: number, phase: DdpoProgress['phase'], done: number, total: number): void {
  run.opts.onProgress?.({ epoch, numEpochs: run.opts.config.num_epochs, phase, done, total });
}

// Wall seconds of an epoch's phases: lap() since the previous lap, total() since the epoch began.
interface EpochClock { lap(): number; total(): number }

function epochClock(): EpochClock {
  const begin = performance.now();
  let mark = begin;
  return {
    lap: () => { const now = performance.now(); const s = (now - mark) / 1000; mark = now; return s; },
    total: () => (performance.now() - begin) / 1000,
  };
}

// Renders the fixed evaluation set (prompt x seed) with the current weights and scores it.
async function evaluate(opts: DdpoRunOptions, prompts: string[], epoch: number, globalStep: number): Promise<EvalImage[]> {
  const c = opts.config;
  const dir = evalDirOf(opts.layout, epoch);
  await fs.promises.mkdir(dir, { recursive: true });
  const out: EvalImage[] = [];
  const images: ImageRGB[] = [];
  const metas: Record<string, unknown>[] = [];
  for (const [pi, prompt] of prompts.entries()) {
    for (const seed of c.eval_seeds) {
      opts.signal?.throwIfAborted();
      const s = await opts.policy.sample({ prompts: [prompt], negativePrompt: c.negative_prompts, seed, numSteps: c.sample_num_steps, eta: c.sample_eta, guidanceScale: c.sample_guidance_scale, signal: opts.signal });
      const img = s.images[0];
      const file = path.join(dir, `p${pi}-s${seed}.png`);
      await atomicWriteFile(file, encodePng({ ...img, channels: 3 }, { prompt, seed: String(seed), epoch: String(epoch), global_step: String(globalStep) }));
      images.push(img);
      metas.push({});
      out.push({ prompt, seed, image: path.relative(opts.layout.experimentDir, file).split(path.sep).join('/'), reward: NaN });
    }
  }
  const rewards = await opts.reward(images, out.map((e) => e.prompt), metas);
  assertFinite(rewards, 'evaluation reward', epoch, globalStep, 'eval');
  rewards.forEach((r, i) => (out[i].reward = r));
  return out;
}
