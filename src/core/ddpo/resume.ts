/** Where a DDPO run starts: epoch 0 of a new run, or the epoch after the checkpoint an interrupted one resumes from. */
import { PerPromptStatTracker } from './advantages';
import { latestCheckpoint, loadCheckpoint } from './checkpoint';
import { PathEscapeError, resolveInside } from '../fsutil';
import { DEFAULT_DDPO_CONFIG, type DdpoConfig } from './config';
import type { DdpoLayout } from './layout';
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
  const ckpt = o.resume || c.resume_from ? (c.resume_from ? loadCheckpoint(resumeFromDir(layout, c.resume_from)) : latestCheckpoint(layout.checkpointsDir)) : undefined;
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
    o.log(`resuming from ${ckpt.dir} (epoch ${start.firstEpoch} of ${c.num_epochs}, global step ${start.globalStep})`);
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

// `resume_from` comes from ddpo.json, which anyone can edit: it names a checkpoint of this experiment or is refused.
function resumeFromDir(layout: DdpoLayout, resumeFrom: string): string {
  try {
    return resolveInside(layout.experimentDir, resumeFrom);
  } catch (e) {
    if (!(e instanceof PathEscapeError)) throw e;
    throw new Error(`resume_from "${resumeFrom}" in ${layout.configFile} is not inside the experiment (${e.why}); name one of its checkpoints, e.g. "ddpo/checkpoints/epoch-000003"`);
  }
}
