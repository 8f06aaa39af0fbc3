/**
 * What every fine-tuning run shares, whatever its algorithm: start or resume, the epoch loop with status.json, one
 * metrics.jsonl line per epoch, checkpoints, the evaluation images, and how a run ends (done, stopped early, stopped,
 * failed). An algorithm supplies only its epoch (see {@link EpochAlgorithm}).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crashPoint } from '../crashPoint';
import { appendLineDurable, atomicWriteFile } from '../fsutil';
import { encodePng } from '../image/png';
import type { ImageRGB } from '../image/rgb';
import { saveCheckpoint, type LoopState } from './checkpoint';
import type { DdpoConfig } from './config';
import { assertFinite, NonFiniteError } from './guards';
import { evalDirOf, type DdpoLayout } from './layout';
import { jsonSafe, type EvalImage } from './metrics';
import { startOrResume, type RunStart } from './resume';
import type { DdpoProgress, Policy, RewardFn } from './types';

/** What the loop needs of a policy: sampling (evaluation images) and its state (checkpoints). */
export type RunPolicy = Pick<Policy, 'sample' | 'saveState' | 'loadState' | 'lora'>;

/** The fields every metrics line has; the loop fills in `seconds.checkpoint` and `seconds.total`. */
export interface RunLine {
  epoch: number;
  global_step: number;
  seconds: { checkpoint: number; total: number };
  time: string;
}

/** Inputs of {@link runEpochs}. */
export interface LoopOptions {
  config: DdpoConfig;
  layout: DdpoLayout;
  policy: RunPolicy;
  /** Continue from the newest checkpoint (or config.resume_from); without it an existing run is an error. */
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: DdpoProgress) => void;
  onLog?: (line: string) => void;
}

/** How train_kl_guard ended a run: the policy holds the weights of `keptEpoch` (-1: the base model). */
export interface StoppedEarly {
  epoch: number;
  keptEpoch: number;
  message: string;
}

/** What a finished (or stopped-early) run did. */
export interface LoopResult<L> {
  firstEpoch: number;
  lastEpoch: number;
  metrics: L[];
  stoppedEarly?: StoppedEarly;
}

/** A run under way: its options, where it started and what carries from one epoch to the next. */
export interface LoopRun<L> extends RunStart {
  opts: LoopOptions;
  log: (line: string) => void;
  // the save after the previous epoch, reported in this epoch's line
  lastCheckpointSeconds: number;
  metrics: L[];
}

/** What one epoch of an algorithm produced. */
export interface EpochOutcome<L> {
  line: L;
  /**
   * Why the epoch is not checkpointed as usual: 'suspect' (only when it is the last), 'diverged' (never). DDPO's
   * train_kl_guard says so; an algorithm without such a verdict leaves it out.
   */
  hold?: 'suspect' | 'diverged';
  /** One log line of what the epoch did (the checkpoint's time is appended). */
  summary: string;
  /** Runs once the line is written and checkpointed; returns how the run stopped early, if this epoch stopped it. */
  after?: () => Promise<StoppedEarly | undefined>;
}

/** An algorithm's epoch; `run` is the loop's state with the algorithm's own fields added by `open`. */
export interface EpochAlgorithm<L extends RunLine, R extends LoopRun<L>> {
  /** Adds what the algorithm carries between epochs (it may read the metrics of a resumed run's earlier epochs). */
  open(run: LoopRun<L>): R | Promise<R>;
  epoch(run: R, epoch: number, clock: EpochClock): Promise<EpochOutcome<L>>;
}

/** Runs epochs until num_epochs; a NaN/Inf throws NonFiniteError after recording it in status.json. */
export async function runEpochs<L extends RunLine, R extends LoopRun<L>>(opts: LoopOptions, algo: EpochAlgorithm<L, R>): Promise<LoopResult<L>> {
  const c = opts.config;
  await fs.promises.mkdir(opts.layout.runDir, { recursive: true });
  const log = opts.onLog ?? (() => undefined);
  const start = await startOrResume({ config: c, layout: opts.layout, policy: opts.policy, resume: opts.resume, log });
  const run = await algo.open({ ...start, opts, log, lastCheckpointSeconds: 0, metrics: [] });
  let epoch = run.firstEpoch;
  let stoppedEarly: StoppedEarly | undefined;
  try {
    for (; epoch < c.num_epochs; epoch++) {
      stoppedEarly = await oneEpoch(run, algo, epoch);
      if (stoppedEarly) break;
    }
    await finish(run, stoppedEarly);
  } catch (e) {
    await recordFailure(run, epoch, e);
    throw e;
  }
  return { firstEpoch: run.firstEpoch, lastEpoch: stoppedEarly?.keptEpoch ?? c.num_epochs - 1, metrics: run.metrics, ...(stoppedEarly ? { stoppedEarly } : {}) };
}

// One epoch: the algorithm's work, then its metrics line and (when due and the verdict allows) its checkpoint.
async function oneEpoch<L extends RunLine, R extends LoopRun<L>>(run: R, algo: EpochAlgorithm<L, R>, epoch: number): Promise<StoppedEarly | undefined> {
  const c = run.opts.config;
  await writeStatus(run.opts.layout, 'running', { epoch, global_step: run.globalStep });
  const clock = epochClock();
  const out = await algo.epoch(run, epoch, clock);
  crashPoint('epoch-trained');
  // A suspect epoch is checkpointed only as the last (no epoch follows to confirm it).
  const last = epoch === c.num_epochs - 1;
  const saveNow = out.hold !== 'diverged' && (out.hold !== 'suspect' || last) && ((epoch + 1) % c.save_freq === 0 || last);
  await recordEpoch(run, epoch, out.line, saveNow, clock);
  run.log(out.summary + (saveNow ? `, checkpoint ${run.lastCheckpointSeconds.toFixed(1)} s` : ''));
  return out.after?.();
}

// Writes the epoch's metrics line, then (saveNow) its checkpoint.
async function recordEpoch<L extends RunLine>(run: LoopRun<L>, epoch: number, line: L, saveNow: boolean, clock: EpochClock): Promise<void> {
  line.seconds.checkpoint = run.lastCheckpointSeconds;
  line.seconds.total = clock.total();
  // The metrics line goes first: a kill before the checkpoint is complete re-runs this epoch and rewrites it.
  await appendLineDurable(run.opts.layout.metricsFile, JSON.stringify(jsonSafe(line)));
  crashPoint('epoch-logged');
  if (saveNow) {
    reportProgress(run, epoch, 'checkpoint', 0, 1);
    await checkpointEpoch(run, epoch, run.globalStep, run.rngs.state(), run.tracker?.state() ?? null, await run.opts.policy.saveState());
    run.lastCheckpointSeconds = clock.lap();
  } else run.lastCheckpointSeconds = 0;
  run.metrics.push(line);
}

/** Writes the checkpoint of `epoch` with the given loop state and policy state (the policy's LoRA as it is now). */
export async function checkpointEpoch<L>(run: LoopRun<L>, epoch: number, globalStep: number, rng: LoopState['rng'], statTracker: LoopState['statTracker'], policy: Awaited<ReturnType<RunPolicy['saveState']>>): Promise<void> {
  const c = run.opts.config;
  const loop: LoopState = { format: 1, epoch, globalStep, rng, statTracker, config: c, savedAt: new Date().toISOString() };
  await saveCheckpoint(run.opts.layout.checkpointsDir, loop, policy, await run.opts.policy.lora(), c.num_checkpoint_limit);
}

// status.json and the last progress of a run that finished or stopped early.
async function finish<L>(run: LoopRun<L>, stoppedEarly: StoppedEarly | undefined): Promise<void> {
  const c = run.opts.config;
  await writeStatus(run.opts.layout, 'done', stoppedEarly
    ? { epoch: stoppedEarly.keptEpoch, global_step: run.globalStep, stopped_early: true, message: stoppedEarly.message }
    : { epoch: c.num_epochs - 1, global_step: run.globalStep });
  reportProgress(run, stoppedEarly?.epoch ?? c.num_epochs - 1, 'done', 1, 1);
}

// status.json after an error: 'stopped' when the signal aborted the run, else 'failed'.
async function recordFailure<L>(run: LoopRun<L>, epoch: number, e: unknown): Promise<void> {
  const stopped = run.opts.signal?.aborted === true;
  await writeStatus(run.opts.layout, stopped ? 'stopped' : 'failed', {
    epoch, global_step: run.globalStep, message: (e as Error).message,
    ...(e instanceof NonFiniteError ? { global_step: e.step, phase: e.phase, what: e.what } : {}),
  }).catch(() => undefined);
}

// pid and host let a reader tell a "running" run whose process is gone (see src/core/studio/runState.ts).
function writeStatus(layout: DdpoLayout, state: string, extra: Record<string, unknown> = {}): Promise<void> {
  return atomicWriteFile(layout.statusFile, JSON.stringify({ state, algorithm: layout.algorithm, pid: process.pid, host: os.hostname(), updated: new Date().toISOString(), ...extra }, null, 1) + '\n');
}

/** Tells the run's listener where it is. */
export function reportProgress<L>(run: LoopRun<L>, epoch: number, phase: DdpoProgress['phase'], done: number, total: number): void {
  run.opts.onProgress?.({ epoch, numEpochs: run.opts.config.num_epochs, phase, done, total });
}

/** Wall seconds of an epoch's phases: lap() since the previous lap, total() since the epoch began. */
export interface EpochClock { lap(): number; total(): number }

function epochClock(): EpochClock {
  const begin = performance.now();
  let mark = begin;
  return {
    lap: () => { const now = performance.now(); const s = (now - mark) / 1000; mark = now; return s; },
    total: () => (performance.now() - begin) / 1000,
  };
}

/**
 * Renders the fixed evaluation set (eval_prompts x eval_seeds) with the current weights into the epoch's eval folder
 * and scores it with `reward` (without one, the images carry no score).
 */
export async function renderEvalImages(opts: LoopOptions, prompts: string[], epoch: number, globalStep: number, reward?: RewardFn): Promise<EvalImage[]> {
  const c = opts.config;
  const dir = evalDirOf(opts.layout, epoch);
  await fs.promises.mkdir(dir, { recursive: true });
  const out: EvalImage[] = [];
  const images: ImageRGB[] = [];
  for (const [pi, prompt] of prompts.entries()) {
    for (const seed of c.eval_seeds) {
      opts.signal?.throwIfAborted();
      const s = await opts.policy.sample({ prompts: [prompt], negativePrompt: c.negative_prompts, seed, numSteps: c.sample_num_steps, eta: c.sample_eta, guidanceScale: c.sample_guidance_scale, signal: opts.signal });
      const img = s.images[0];
      const file = path.join(dir, `p${pi}-s${seed}.png`);
      await atomicWriteFile(file, encodePng({ ...img, channels: 3 }, { prompt, seed: String(seed), epoch: String(epoch), global_step: String(globalStep) }));
      images.push(img);
      out.push({ prompt, seed, image: path.relative(opts.layout.experimentDir, file).split(path.sep).join('/'), reward: NaN });
    }
  }
  if (!reward) return out;
  const rewards = await reward(images, out.map((e) => e.prompt), out.map(() => ({})));
  assertFinite(rewards, 'evaluation reward', epoch, globalStep, 'eval');
  rewards.forEach((r, i) => (out[i].reward = r));
  return out;
}
