/** Where a DDPO run starts: epoch 0 of a new run, or the epoch after the checkpoint an interrupted one resumes from. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PerPromptStatTracker } from './advantages';
import { latestCheckpoint, listCheckpoints, loadCheckpoint } from './checkpoint';
import { atomicWriteFileSync, PathEscapeError, resolveInside } from '../fsutil';
import { DEFAULT_DDPO_CONFIG, type DdpoConfig } from './config';
import { checkpointName, type DdpoLayout } from './layout';
import { readMetrics, truncateMetrics } from './metrics';
import { RunRngs } from './random';
import type { Policy } from './types';

/** What a run starts from: its random streams, per-prompt stat tracker, optimizer step count and first epoch. */
export interface RunStart {
  rngs: RunRngs;
  tracker: PerPromptStatTracker | null;
  globalStep: number;
  firstEpoch: number;
}

/** What {@link startOrResume} needs to know. */
export interface StartOptions {
  config: DdpoConfig;
  layout: DdpoLayout;
  policy: Pick<Policy, 'loadState'>;
  /** Continue from the newest checkpoint (or config.resume_from); without it an existing run is an error. */
  resume?: boolean;
  log: (line: string) => void;
}

/** Where a run records the `resume_from` it was rewound to, so that the same value does not rewind it again. */
export const RESUMED_FROM_FILE = 'resumed-from.json';

/**
 * Resuming (`resume`, or config.resume_from) loads the checkpoint into the policy and drops the metrics lines after
 * it (those epochs run again and write the same lines). `resume` with no checkpoint starts at epoch 0 when no epoch
 * was recorded, and refuses when some were (their weights are gone, so they can be neither continued nor kept beside
 * a new run's). A new run refuses a folder that already holds one.
 */
export async function startOrResume(o: StartOptions): Promise<RunStart> {
  const { config: c, layout } = o;
  const fresh: RunStart = {
    rngs: RunRngs.fromSeed(c.seed),
    tracker: c.per_prompt_stat_tracking ? new PerPromptStatTracker(c.per_prompt_stat_tracking_buffer_size, c.per_prompt_stat_tracking_min_count) : null,
    globalStep: 0,
    firstEpoch: 0,
  };
  // resume_from rewinds a run once: a later Resume with it still in ddpo.json continues the rewound run
  const rewind = c.resume_from !== undefined && c.resume_from !== '' && c.resume_from !== appliedResumeFrom(layout) ? c.resume_from : undefined;
  const ckpt = rewind ? loadCheckpoint(resumeFromDir(layout, rewind)) : o.resume || c.resume_from ? latestCheckpoint(layout.checkpointsDir) : undefined;
  if (rewind && ckpt) {
    await setAsideNewer(layout, ckpt.loop.epoch, o.log);
    fs.mkdirSync(layout.runDir, { recursive: true });
    atomicWriteFileSync(path.join(layout.runDir, RESUMED_FROM_FILE), JSON.stringify({ resume_from: rewind, epoch: ckpt.loop.epoch, at: new Date().toISOString() }) + '\n');
  }
  if (ckpt) {
    await o.policy.loadState(ckpt.policy);
    const start: RunStart = {
      rngs: RunRngs.fromState(ckpt.loop.rng),
      tracker: fresh.tracker && ckpt.loop.statTracker ? PerPromptStatTracker.fromState(ckpt.loop.statTracker) : fresh.tracker,
      globalStep: ckpt.loop.globalStep,
      firstEpoch: ckpt.loop.epoch + 1,
    };
    for (const w of configChanges(ckpt.loop.config, c)) o.log(`warning: ${w} since the checkpoint; the resumed run will not match an uninterrupted one`);
    await truncateMetrics(layout.metricsFile, ckpt.loop.epoch);
    o.log(`resuming from ${ckpt.dir} (epoch ${start.firstEpoch + 1} of ${c.num_epochs}, global step ${start.globalStep})`);
    return start;
  }
  const recorded = readMetrics(layout.metricsFile).length;
  if (o.resume && recorded > 0) throw new Error(noCheckpointToResume(layout, recorded));
  if (o.resume) {
    o.log('no checkpoint to resume from; starting at epoch 0');
    await truncateMetrics(layout.metricsFile, -1);
  } else if (recorded > 0) {
    throw new Error(`${layout.runDir} already holds a DDPO run; pass --resume to continue it, or delete that folder to start over`);
  }
  return fresh;
}

function noCheckpointToResume(layout: DdpoLayout, recorded: number): string {
  return `no checkpoint to resume from in ${layout.checkpointsDir} (the run stopped before its first save; save_freq sets how often it saves); ` +
    `${layout.metricsFile} (${recorded} epoch${recorded === 1 ? '' : 's'}) is kept. To start over from epoch 0, move or delete ${layout.runDir}, then start a new run (without --resume).`;
}

// Settings whose change breaks "resume reproduces the uninterrupted run" (train_timesteps_per_run changes only the
// order of float sums; checkpoints written without it lack it).
function configChanges(before: DdpoConfig, now: DdpoConfig): string[] {
  const ignore = new Set(['num_epochs', 'resume_from', 'save_freq', 'num_checkpoint_limit', 'log_image_freq', 'eval_prompts', 'eval_seeds', 'run_name', 'max_workers', 'async_reward_computation',
    'train_timesteps_per_run']);
  // a checkpoint from before a setting existed ran with its default
  const was = (k: string) => (before as unknown as Record<string, unknown>)[k] ?? (DEFAULT_DDPO_CONFIG as unknown as Record<string, unknown>)[k];
  const is = (k: string) => (now as unknown as Record<string, unknown>)[k];
  return Object.keys(now)
    .filter((k) => !ignore.has(k) && JSON.stringify(was(k)) !== JSON.stringify(is(k)))
    .map((k) => `"${k}" changed from ${JSON.stringify(was(k))} to ${JSON.stringify(is(k))}`);
}

// The resume_from this run was last rewound to, if any.
function appliedResumeFrom(layout: DdpoLayout): string | undefined {
  try {
    const v = (JSON.parse(fs.readFileSync(path.join(layout.runDir, RESUMED_FROM_FILE), 'utf8')) as { resume_from?: unknown }).resume_from;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

// The run's checkpoints after the epoch it rewinds to move into checkpoints/superseded-<time>/: kept for the person,
// out of the way of the rewound run's own (which would otherwise mix with them when it resumes and prunes).
async function setAsideNewer(layout: DdpoLayout, epoch: number, log: (line: string) => void): Promise<void> {
  const newer = listCheckpoints(layout.checkpointsDir).filter((e) => e > epoch);
  if (newer.length === 0) return;
  const aside = path.join(layout.checkpointsDir, `superseded-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await fs.promises.mkdir(aside, { recursive: true });
  for (const e of newer) await fs.promises.rename(path.join(layout.checkpointsDir, checkpointName(e)), path.join(aside, checkpointName(e)));
  log(`resume_from rewinds the run to epoch ${epoch + 1}: its ${newer.length} later checkpoint${newer.length === 1 ? '' : 's'} moved to ${aside}`);
}

// `resume_from` comes from ddpo.json, which anyone can edit: it names a checkpoint of this experiment or is refused.
function resumeFromDir(layout: DdpoLayout, resumeFrom: string): string {
  try {
    return resolveInside(layout.experimentDir, resumeFrom);
  } catch (e) {
    if (!(e instanceof PathEscapeError)) throw e;
    throw new Error(`resume_from "${resumeFrom}" in ${layout.configFile} is not inside the experiment (${e.why}); name one of its checkpoints, e.g. "ddpo/checkpoints/epoch-000003"`);
  }
}
