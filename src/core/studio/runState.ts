/** A fine-tuning run's state as the disk tells it: status.json, metrics.jsonl, checkpoints and eval images. */
import * as fs from 'node:fs';
import { listCheckpoints } from '../ddpo/checkpoint';
import { parseDdpoConfig } from '../ddpo/config';
import { ddpoLayout } from '../ddpo/layout';
import { readMetrics, type EvalImage } from '../ddpo/metrics';
import { resolveInsideOrUndefined } from '../fsutil';

/** What the run looks like; `interrupted` means status.json says running but nothing runs it any more. */
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
  state: RunStateName;
  message?: string;
  /** Last finished epoch (0-based), -1 before the first. */
  lastEpoch: number;
  numEpochs: number;
  points: RunPoint[];
  checkpoints: number[];
  /** The newest evaluation images (paths relative to the experiment folder). */
  evalEpoch?: number;
  evalImages: EvalImage[];
}

/** Reads the run of an experiment; `runningHere` says whether this process's worker is running it now. */
export function readRunState(experimentDir: string, runningHere: boolean): RunState {
  const layout = ddpoLayout(experimentDir);
  const metrics = readMetrics(layout.metricsFile);
  let status: { state?: string; message?: string } = {};
  try {
    status = JSON.parse(fs.readFileSync(layout.statusFile, 'utf8')) as typeof status;
  } catch {
    // no run yet
  }
  const num = (x: unknown) => (typeof x === 'number' ? x : Number(x));
  const points = metrics.map((m) => ({ epoch: m.epoch, rewardMean: num(m.reward_mean), rewardStd: num(m.reward_std), approxKl: num(m.approx_kl), clipfrac: num(m.clipfrac) }));
  const withEval = [...metrics].reverse().find((m) => m.eval && m.eval.length > 0);
  return {
    state: effectiveState(status.state, runningHere),
    message: status.message,
    lastEpoch: metrics.length ? metrics[metrics.length - 1].epoch : -1,
    numEpochs: numEpochsOf(experimentDir),
    points,
    checkpoints: listCheckpoints(layout.checkpointsDir),
    evalEpoch: withEval?.epoch,
    // image paths come from metrics.jsonl, which anyone can edit: one outside the experiment is left out
    evalImages: (withEval?.eval ?? []).filter((e) => resolveInsideOrUndefined(experimentDir, e.image)),
  };
}

/** Maps status.json's state to what the user should see, given whether a worker runs it now. */
export function effectiveState(onDisk: string | undefined, runningHere: boolean): RunStateName {
  if (runningHere) return 'running';
  switch (onDisk) {
    case undefined:
      return 'idle';
    case 'running':
      // The process that wrote it is gone (worker killed, window reloaded mid-run).
      return 'interrupted';
    case 'done':
    case 'failed':
    case 'stopped':
      return onDisk;
    default:
      return 'idle';
  }
}

/** `num_epochs` from ddpo.json (default when absent or unreadable). */
export function numEpochsOf(experimentDir: string): number {
  try {
    const raw = JSON.parse(fs.readFileSync(ddpoLayout(experimentDir).configFile, 'utf8')) as unknown;
    return parseDdpoConfig(raw).config.num_epochs;
  } catch {
    return parseDdpoConfig({}).config.num_epochs;
  }
}
