/** Failures a DDPO run reports precisely: a non-finite number, running out of memory, or a diverging policy (train_kl_guard). */
import type { StatTrackerState } from './advantages';
import type { DdpoConfig } from './config';
import type { RunRngState } from './random';
import type { PolicyState } from './types';

/** Which part of an epoch was running. */
export type DdpoPhase = 'eval' | 'sample' | 'reward' | 'train' | 'checkpoint';

/** A NaN or Inf stopped the run; the last good checkpoint is kept. */
export class NonFiniteError extends Error {
  constructor(readonly epoch: number, readonly step: number, readonly phase: DdpoPhase, readonly what: string) {
    super(`DDPO stopped: ${what} is not finite at epoch ${epoch}, global step ${step} (${phase}). ` +
      'The last good checkpoint is kept; lower train_learning_rate or train_max_grad_norm, check the reward, then resume with --resume.');
    this.name = 'NonFiniteError';
  }
}

/** The run ran out of memory; says which setting to lower. */
export class OutOfMemoryError extends Error {
  constructor(readonly setting: string, readonly value: number, phase: DdpoPhase, cause: string) {
    super(`Out of memory while ${phase === 'train' ? 'training' : phase === 'sample' ? 'sampling' : phase}: lower ${setting} (now ${value}) in ddpo.json` +
      (setting === 'train_batch_size' ? ' and raise train_gradient_accumulation_steps to keep the effective batch' : '') +
      (setting === 'sample_batch_size' ? ' and raise sample_num_batches_per_epoch to keep the samples per epoch' : '') +
      (setting === 'train_timesteps_per_run' ? ' (it changes only speed; 1 needs the least memory)' : '') +
      `. (${cause})`);
    this.name = 'OutOfMemoryError';
  }
}

const OOM = /out of memory|bad_alloc|failed to allocate|cannot allocate|ENOMEM|allocation failed|Array buffer allocation failed|Invalid typed array length/i;

/** True when an error looks like memory exhaustion (onnxruntime, V8 or the OS). */
export function isOutOfMemory(e: unknown): boolean {
  return OOM.test(e instanceof Error ? e.message : String(e));
}

/** Runs `f`, turning a memory failure into an OutOfMemoryError naming `setting`. */
export async function namingMemorySetting<T>(phase: DdpoPhase, setting: string, value: number, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof OutOfMemoryError || e instanceof NonFiniteError || !isOutOfMemory(e)) throw e;
    throw new OutOfMemoryError(setting, value, phase, e instanceof Error ? e.message : String(e));
  }
}

/** Throws NonFiniteError unless every value is finite. */
export function assertFinite(values: ArrayLike<number>, what: string, epoch: number, step: number, phase: DdpoPhase): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new NonFiniteError(epoch, step, phase, values.length > 1 ? `${what}[${i}] (${values[i]})` : `${what} (${values[i]})`);
  }
}

/** approx_kl below this is never called a divergence, however small the earlier epochs' were (numerical noise). */
export const KL_GUARD_FLOOR = 1e-5;

/**
 * The spike test of `train_kl_guard`: `kl` is a spike when it exceeds `factor` times the median of `earlier`
 * (the previous epochs' approx_kl), given at least 3 of them, and {@link KL_GUARD_FLOOR}. Returns that median when it is a spike.
 */
export function klSpike(earlier: readonly number[], kl: number, factor: number): number | undefined {
  if (!(factor > 0) || earlier.length < 3 || !(kl > KL_GUARD_FLOOR)) return undefined;
  const s = [...earlier].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return kl > factor * median ? median : undefined;
}

/** train_kl_guard's verdict on one epoch; `median` is the earlier epochs' median approx_kl that it spiked above. */
export type KlVerdict = { kind: 'calm' } | { kind: 'suspect' | 'diverged'; median: number };

/**
 * `train_kl_guard` over a run, judging each epoch's approx_kl in turn: a spike ({@link klSpike}) makes the epoch
 * 'suspect', a second spike in a row means the policy 'diverged'. `earlier`: approx_kl of the epochs before the first
 * one judged (a resumed run's); they count for the median, never as the first of two spikes.
 */
export class KlGuard {
  private readonly seen: number[];
  private lastSpiked = false;

  constructor(private readonly factor: number, earlier: readonly number[] = []) {
    this.seen = [...earlier];
  }

  /** Judges the next epoch's approx_kl. */
  judge(kl: number): KlVerdict {
    // One spike alone is how a policy that has barely moved starts to learn (approx_kl jumps once and falls back);
    // over-optimisation keeps climbing, and the weights from before its first spike are the ones worth keeping
    // (docs/performance.md, "Training longer, and the KL guard").
    const median = klSpike(this.seen, kl, this.factor);
    this.seen.push(kl);
    const verdict: KlVerdict = median === undefined ? { kind: 'calm' } : { kind: this.lastSpiked ? 'diverged' : 'suspect', median };
    this.lastSpiked = median !== undefined;
    return verdict;
  }
}

/** What an epoch started from: the state train_kl_guard goes back to. */
export interface EpochStart { policy: PolicyState; rng: RunRngState; tracker: StatTrackerState | null; globalStep: number }

/** A first spike: its epoch, approx_kl and ratio to the median, and the state the epoch started from. */
export interface KlSpike { epoch: number; approxKl: number; ratio: number; start: EpochStart }

/** An epoch's verdict in the loop: the median it spiked above, whether it is suspect and, once diverged, the first spike and this epoch's ratio. */
export interface EpochVerdict { median?: number; suspect: boolean; diverged?: { first: KlSpike; ratio: number } }

/**
 * `train_kl_guard` in the loop: {@link KlGuard}'s verdicts, and the state a suspect epoch (a first spike) started
 * from, which a second spike in a row goes back to. Off (never a spike) when `factor` is 0.
 */
export class DivergenceWatch {
  private readonly guard?: KlGuard;
  private suspect?: KlSpike;

  constructor(factor: number, earlier: readonly number[]) {
    this.guard = factor > 0 ? new KlGuard(factor, earlier) : undefined;
  }

  /** Whether the guard is on (epochs then save the state they start from). */
  get active(): boolean {
    return this.guard !== undefined;
  }

  /** Judges the next epoch's approx_kl; `start` is the state the epoch started from. */
  judge(epoch: number, approxKl: number, start: EpochStart | undefined): EpochVerdict {
    const verdict: KlVerdict = this.guard?.judge(approxKl) ?? { kind: 'calm' };
    const first = verdict.kind === 'diverged' ? this.suspect : undefined;
    this.suspect = verdict.kind === 'suspect' && start ? { epoch, approxKl, ratio: approxKl / verdict.median, start } : undefined;
    if (verdict.kind === 'calm') return { suspect: false };
    return { median: verdict.median, suspect: this.suspect !== undefined, ...(first ? { diverged: { first, ratio: approxKl / verdict.median } } : {}) };
  }
}

/** Why a run stopped early in `epoch`: both spikes, their ratios to the median, and which LoRA is kept. */
export function divergenceMessage(c: Pick<DdpoConfig, 'num_epochs' | 'train_kl_guard'>, epoch: number, first: KlSpike, approxKl: number, ratio: number): string {
  // counted from 1 like the progress display ("epoch 28/30"); metrics.jsonl and checkpoint folders count from 0
  return `stopped early in epoch ${epoch + 1}/${c.num_epochs}: approx KL spiked two epochs in a row, to ${first.approxKl.toExponential(2)} in epoch ${first.epoch + 1} ` +
    `and ${approxKl.toExponential(2)} in epoch ${epoch + 1} (${times(first.ratio)} and ${times(ratio)} the median of the epochs before, ` +
    `train_kl_guard ${c.train_kl_guard}); the policy diverged, so the LoRA ${first.epoch > 0 ? `after epoch ${first.epoch}/${c.num_epochs}` : 'of the base model'} is kept`;
}

// "186x"; "2.7e+42x" once a policy has blown up.
const times = (ratio: number) => `${ratio < 1e6 ? ratio.toFixed(0) : ratio.toExponential(1)}x`;
