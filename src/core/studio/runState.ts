/** A fine-tuning run's state as the disk tells it: status.json, metrics.jsonl, checkpoints and eval images. */
import * as fs from 'node:fs';
import { listCheckpoints } from '../ddpo/checkpoint';
import { parseDdpoConfig, settingsFor } from '../ddpo/config';
import { ddpoLayout } from '../ddpo/layout';
import { isDpoMetrics, readMetrics, type AnyEpochMetrics, type EvalImage } from '../ddpo/metrics';
import { TRAINING_ALGORITHMS, type DpoEpochPoint, type TrainingAlgorithm } from '../../protocol';
import { resolveInsideOrUndefined } from '../fsutil';
import { processState, readRunLock } from '../experiment/runLock';

/** What the run looks like; `interrupted` means status.json says running but the process that wrote it no longer runs it. */
export type RunStateName = 'idle' | 'running' | 'done' | 'failed' | 'stopped' | 'interrupted';

/** Per-epoch chart values. */
export interface RunPoint {
  epoch: number;
  rewardMean: number;
  rewardStd: number;
  approxKl: number;
  clipfrac: number;
}

/** Everything the tree and the dashboard need about one run. */
export interface RunState {
  /** Absent: DDPO. */
  algorithm?: TrainingAlgorithm;
  state: RunStateName;
  message?: string;
  /** Last finished epoch (0-based), -1 before the first. */
  lastEpoch: number;
  numEpochs: number;
  /** DDPO's epochs. */
  points: RunPoint[];
  /** Diffusion-DPO's epochs (absent for DDPO). */
  dpoPoints?: DpoEpochPoint[];
  checkpoints: number[];
  /** The newest evaluation images (paths relative to the experiment folder). */
  evalEpoch?: number;
  evalImages: EvalImage[];
}

/** Reads the run of `algorithm` of an experiment; `runningHere` says whether this process's worker is running it now. */
export function readRunState(experimentDir: string, runningHere: boolean, algorithm: TrainingAlgorithm = 'ddpo'): RunState {
  const layout = ddpoLayout(experimentDir, algorithm);
  const all = readMetrics<AnyEpochMetrics>(layout.metricsFile);
  const metrics = all.filter((m) => !isDpoMetrics(m)) as Extract<AnyEpochMetrics, { reward_mean: number }>[];
  const dpo = all.filter(isDpoMetrics);
  let status: { state?: string; message?: string; pid?: unknown; host?: unknown } = {};
  try {
    status = JSON.parse(fs.readFileSync(layout.statusFile, 'utf8')) as typeof status;
  } catch {
    // no run yet
  }
  const num = (x: unknown) => (typeof x === 'number' ? x : Number(x));
  const points = metrics.map((m) => ({ epoch: m.epoch, rewardMean: num(m.reward_mean), rewardStd: num(m.reward_std), approxKl: num(m.approx_kl), clipfrac: num(m.clipfrac) }));
  const withEval = [...all].reverse().find((m) => m.eval && m.eval.length > 0);
  return {
    ...(algorithm === 'ddpo' ? {} : { algorithm, dpoPoints: dpo.map((m) => ({ epoch: m.epoch, loss: num(m.loss), implicitAcc: num(m.implicit_acc), heldOutAcc: m.held_out ? num(m.held_out.implicit_acc) : null, marginMean: num(m.margin_mean) })) }),
    state: effectiveState(status.state, runningHere, writerStillRuns(experimentDir, status)),
    message: status.message,
    lastEpoch: all.length ? all[all.length - 1].epoch : -1,
    numEpochs: numEpochsOf(experimentDir, algorithm),
    points,
    checkpoints: listCheckpoints(layout.checkpointsDir),
    evalEpoch: withEval?.epoch,
    // image paths come from metrics.jsonl, which anyone can edit: one outside the experiment is left out
    evalImages: (withEval?.eval ?? []).filter((e) => resolveInsideOrUndefined(experimentDir, e.image)),
  };
}

/**
 * Maps status.json's state to what the user should see, given whether this window's worker runs it now and whether
 * the process that wrote the status still runs it (a `ddpo train` in a terminal, another window's worker).
 */
export function effectiveState(onDisk: string | undefined, runningHere: boolean, writerRuns = false): RunStateName {
  if (runningHere) return 'running';
  switch (onDisk) {
    case undefined:
      return 'idle';
    case 'running':
      // Otherwise the process that wrote it is gone (killed, worker crashed, window reloaded mid-run).
      return writerRuns ? 'running' : 'interrupted';
    case 'done':
    case 'failed':
    case 'stopped':
      return onDisk;
    default:
      return 'idle';
  }
}

// A run is under way while the process that wrote "running" holds the experiment's run lock (which every run takes
// first and releases last) and, on this machine, is alive; a reused pid or a lock left by a killed run does not count.
function writerStillRuns(experimentDir: string, status: { pid?: unknown; host?: unknown }): boolean {
  const holder = readRunLock(experimentDir);
  if (!holder || holder.pid !== status.pid || (typeof status.host === 'string' && status.host !== holder.host)) return false;
  return processState(holder.pid, holder.host) !== 'dead';
}

/** The reward ddpo.json names; undefined without a readable ddpo.json (the studio then writes its preset, which fine-tunes on the learned reward). */
export function ddpoRewardOf(experimentDir: string): string | undefined {
  try {
    return parseDdpoConfig(JSON.parse(fs.readFileSync(ddpoLayout(experimentDir).configFile, 'utf8')) as unknown).config.reward;
  } catch {
    return undefined;
  }
}

/** `num_epochs` of an algorithm's run from ddpo.json (default when absent or unreadable). */
export function numEpochsOf(experimentDir: string, algorithm: TrainingAlgorithm = 'ddpo'): number {
  try {
    const raw = JSON.parse(fs.readFileSync(ddpoLayout(experimentDir).configFile, 'utf8')) as unknown;
    return settingsFor(parseDdpoConfig(raw).config, algorithm).num_epochs;
  } catch {
    return parseDdpoConfig({}).config.num_epochs;
  }
}

/** True when the experiment has a run of `algorithm` (its folder holds a status or metrics). */
export function hasRun(experimentDir: string, algorithm: TrainingAlgorithm): boolean {
  const l = ddpoLayout(experimentDir, algorithm);
  return fs.existsSync(l.statusFile) || fs.existsSync(l.metricsFile);
}

/** ddpo.json's `algorithm` (DDPO when it is absent or unreadable). */
export function configuredAlgorithm(experimentDir: string): TrainingAlgorithm {
  try {
    return parseDdpoConfig(JSON.parse(fs.readFileSync(ddpoLayout(experimentDir).configFile, 'utf8'))).config.algorithm;
  } catch {
    return 'ddpo';
  }
}

/**
 * The run a panel shows unless told: the one `running` here, else the run whose status changed last, else the one
 * ddpo.json would start.
 */
export function runToShow(experimentDir: string, running?: TrainingAlgorithm): TrainingAlgorithm {
  if (running) return running;
  const when = (a: TrainingAlgorithm) => { try { return fs.statSync(ddpoLayout(experimentDir, a).statusFile).mtimeMs; } catch { return -1; } };
  const runs = TRAINING_ALGORITHMS.filter((a) => hasRun(experimentDir, a)).sort((x, y) => when(y) - when(x));
  return runs[0] ?? configuredAlgorithm(experimentDir);
}
