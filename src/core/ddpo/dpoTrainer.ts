/**
 * The Diffusion-DPO epoch (Wallace et al. 2023): one pass over the training pairs in a fresh random order, each pair
 * noised at a random timestep with random noise (the same for its two images), AdamW after every
 * train_batch_size x train_gradient_accumulation_steps pairs; then the implicit reward on the held-out pairs.
 * runLoop.ts runs the epochs (start, resume, checkpoints, metrics lines, status).
 */
import { GaussianRng } from '../diffusion/rng';
import { assertFinite, namingMemorySetting, NonFiniteError } from './guards';
import type { DpoEpochMetrics, EvalImage, ImplicitReward } from './metrics';
import { randInt, randperm } from './random';
import { renderEvalImages, reportProgress, runEpochs, type EpochClock, type EpochOutcome, type LoopOptions, type LoopResult, type LoopRun } from './runLoop';
import type { PreferenceData, PreferencePair } from './dpoPairs';
import type { PreferenceBatch, PreferencePolicy } from './types';
import type { DdpoConfig } from './config';

/** Inputs of {@link runDiffusionDpo}. */
export interface DpoRunOptions extends LoopOptions {
  policy: PreferencePolicy;
  pairs: PreferenceData;
  /** Prompts of the evaluation images when eval_prompts is empty (the first 4 are rendered). */
  prompts: string[];
  /** Called with each epoch's metrics line once it is written. */
  onEpoch?: (m: DpoEpochMetrics) => void;
}

/** Noise levels each held-out pair is scored at, spread evenly over the trained timesteps. */
export const HELD_OUT_NOISE_LEVELS = 4;

/** Runs Diffusion-DPO epochs until num_epochs; a NaN/Inf throws NonFiniteError after recording it in status.json. */
export function runDiffusionDpo(opts: DpoRunOptions): Promise<LoopResult<DpoEpochMetrics>> {
  const c = opts.config;
  const perStep = c.train_batch_size * c.train_gradient_accumulation_steps;
  if (opts.pairs.train.length < perStep) {
    throw new Error(`Diffusion-DPO needs at least ${perStep} training pairs for one optimizer step (train_batch_size ${c.train_batch_size} x train_gradient_accumulation_steps ` +
      `${c.train_gradient_accumulation_steps}) but the ratings give ${opts.pairs.train.length}; rate more pairs (ties and skips do not count) or lower those settings`);
  }
  const evalPrompts = c.eval_prompts.length ? c.eval_prompts : opts.prompts.slice(0, 4);
  return runEpochs<DpoEpochMetrics, DpoRun>(opts, {
    open: (run) => ({ ...run, dpo: opts, evalPrompts, heldOut: heldOutBatches(opts) }),
    epoch: (run, epoch, clock) => dpoEpoch(run, epoch, clock),
  });
}

// A run under way: the loop's state and what Diffusion-DPO keeps between epochs.
interface DpoRun extends LoopRun<DpoEpochMetrics> {
  dpo: DpoRunOptions;
  evalPrompts: string[];
  heldOut: HeldOut;
}

async function dpoEpoch(run: DpoRun, epoch: number, clock: EpochClock): Promise<EpochOutcome<DpoEpochMetrics>> {
  const c = run.opts.config;
  const seconds = { eval: 0, train: 0, held_out: 0, checkpoint: 0, total: 0 };
  let evalImages: EvalImage[] | undefined;
  const evalCount = run.evalPrompts.length * c.eval_seeds.length;
  if (epoch % c.log_image_freq === 0 && evalCount > 0) {
    reportProgress(run, epoch, 'eval', 0, evalCount);
    evalImages = await renderEvalImages(run.opts, run.evalPrompts, epoch, run.globalStep);
  }
  seconds.eval = clock.lap();
  const train = await trainPairs(run, epoch);
  seconds.train = clock.lap();
  reportProgress(run, epoch, 'held_out', 0, 1);
  const heldOut = await scoreHeldOut(run);
  seconds.held_out = clock.lap();
  const line: DpoEpochMetrics = {
    algorithm: 'diffusion-dpo', epoch, global_step: run.globalStep, ...train.reward, grad_norm: train.gradNorm, model_mse: train.modelMse, ref_mse: train.refMse,
    beta_dpo: c.beta_dpo, data: dataCounts(run.dpo.pairs), ...(heldOut ? { held_out: heldOut } : {}), seconds, ...(evalImages ? { eval: evalImages } : {}), time: new Date().toISOString(),
  };
  const ho = heldOut ? `, held-out implicit accuracy ${(100 * heldOut.implicit_acc).toFixed(1)}% of ${heldOut.pairs}` : '';
  return {
    line, summary: `epoch ${epoch}: DPO loss ${line.loss.toFixed(4)}, implicit accuracy ${(100 * line.implicit_acc).toFixed(1)}%${ho}, ${line.seconds.total.toFixed(1)} s`,
    after: async () => { run.dpo.onEpoch?.(line); return undefined; },
  };
}

function dataCounts(d: PreferenceData): DpoEpochMetrics['data'] {
  return { train: d.train.length, held_out: d.heldOut.length, ties: d.counts.ties, skips: d.counts.skips, without_latents: d.counts.withoutLatents, latents: d.latents };
}

// What an epoch's training steps add up to.
interface TrainSummary { reward: ImplicitReward; gradNorm: number; modelMse: number; refMse: number }

// The epoch's optimizer steps over the shuffled training pairs (a remainder short of one step waits for a later epoch's order).
async function trainPairs(run: DpoRun, epoch: number): Promise<TrainSummary> {
  const { policy, config: c, pairs } = run.dpo;
  const perRun = policy.model.pairsPerRun, perStep = c.train_batch_size * c.train_gradient_accumulation_steps;
  const order = randperm(run.rngs.shuffle, pairs.train.length);
  const steps = Math.floor(order.length / perStep);
  const margins: number[] = [];
  let loss = 0, gradNorm = 0, modelMse = 0, refMse = 0;
  for (let s = 0; s < steps; s++) {
    for (let r = 0; r < perStep; r += perRun) {
      run.opts.signal?.throwIfAborted();
      const batch = drawNoise(run, order.slice(s * perStep + r, s * perStep + r + perRun).map((i) => pairs.train[i]), c);
      const stats = await namingMemorySetting('train', 'train_batch_size', c.train_batch_size, () => policy.accumulatePreferences(batch, c.beta_dpo, perRun / perStep));
      assertFinite([stats.loss], 'Diffusion-DPO loss', epoch, run.globalStep, 'train');
      margins.push(...stats.margins);
      loss += stats.loss * perRun; modelMse += stats.modelMse * perRun; refMse += stats.refMse * perRun;
    }
    const u = await policy.update(c.train_max_grad_norm);
    if (!u.applied || !Number.isFinite(u.gradNorm)) throw new NonFiniteError(epoch, run.globalStep, 'train', `gradient norm (${u.gradNorm})`);
    gradNorm += u.gradNorm;
    run.globalStep++;
    reportProgress(run, epoch, 'train', s + 1, steps);
  }
  const n = margins.length;
  return { reward: { ...implicitReward(margins), loss: loss / n }, gradNorm: gradNorm / steps, modelMse: modelMse / n, refMse: refMse / n };
}

// Each pair's timestep and noise, drawn from the run's noise stream (saved in checkpoints, so a resumed run draws the same).
function drawNoise(run: DpoRun, pairs: PreferencePair[], c: DdpoConfig): PreferenceBatch {
  const [lo, hi] = trainedTimesteps(c, run.dpo.policy.model.numTrainTimesteps);
  const size = pairs[0].winner.length;
  return {
    prompts: pairs.map((p) => p.prompt), winners: pairs.map((p) => p.winner), losers: pairs.map((p) => p.loser),
    timesteps: pairs.map(() => lo + randInt(run.rngs.noise, hi - lo)), noise: pairs.map(() => run.rngs.noise.fill(new Float32Array(size))),
  };
}

/**
 * The timesteps Diffusion-DPO trains, [lo, hi): all of [0, T) as the paper does, or with train_timestep_selection
 * 'earliest' the noisiest train_timestep_fraction of them, where DDPO's 'earliest' trains too (an image's layout is
 * decided there).
 */
export function trainedTimesteps(c: DdpoConfig, T: number): [number, number] {
  if (c.train_timestep_selection !== 'earliest') return [0, T];
  return [T - Math.max(1, Math.round(T * c.train_timestep_fraction)), T];
}

/** Margins, the fraction of them above zero, and the mean −log σ(margin). */
export function implicitReward(margins: readonly number[]): ImplicitReward {
  const n = margins.length;
  let acc = 0, sum = 0, loss = 0;
  for (const m of margins) { if (m > 0) acc++; sum += m; loss += softplus(-m); }
  return { implicit_acc: acc / n, margin_mean: sum / n, loss: loss / n, pairs: n };
}

/** −β/2·((e_θ − e_ref)_w − (e_θ − e_ref)_l) per pair, from per-row errors laid out winners first, then losers (float64). */
export function dpoMargins(model: Float64Array, ref: Float64Array, beta: number): number[] {
  const B = model.length / 2;
  return Array.from({ length: B }, (_, k) => -0.5 * beta * ((model[k] - ref[k]) - (model[B + k] - ref[B + k])));
}

function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

// The held-out pairs at fixed noise levels (HELD_OUT_NOISE_LEVELS timesteps, fixed noise per pair), one batch per level,
// and the base model's errors on them, computed once: each epoch then scores only the current LoRA.
interface HeldOut { batches: PreferenceBatch[]; base?: Float64Array[] }

function heldOutBatches(opts: DpoRunOptions): HeldOut {
  const pairs = opts.pairs.heldOut;
  if (pairs.length === 0) return { batches: [] };
  const [lo, hi] = trainedTimesteps(opts.config, opts.policy.model.numTrainTimesteps);
  const batches = Array.from({ length: HELD_OUT_NOISE_LEVELS }, (_, k) => {
    const t = lo + Math.floor(((k + 0.5) * (hi - lo)) / HELD_OUT_NOISE_LEVELS);
    // seeded by the run's seed and the level alone, so every epoch (and a resumed run) scores the same noise
    const rng = new GaussianRng(opts.config.seed * 1000 + 7919 + k);
    return { prompts: pairs.map((p) => p.prompt), winners: pairs.map((p) => p.winner), losers: pairs.map((p) => p.loser), timesteps: pairs.map(() => t), noise: pairs.map((p) => rng.fill(new Float32Array(p.winner.length))) };
  });
  return { batches };
}

// The held-out implicit reward of the current LoRA: the margin of each pair averaged over the noise levels.
async function scoreHeldOut(run: DpoRun): Promise<ImplicitReward | undefined> {
  const { batches } = run.heldOut;
  if (batches.length === 0) return undefined;
  const { policy, config: c } = run.dpo;
  run.heldOut.base ??= await Promise.all(batches.map((b) => policy.predictionErrors(b, 'base')));
  const perLevel: number[][] = [];
  for (const [k, b] of batches.entries()) perLevel.push(dpoMargins(await policy.predictionErrors(b, 'current'), run.heldOut.base[k], c.beta_dpo));
  const margins = perLevel[0].map((_, i) => perLevel.reduce((s, m) => s + m[i], 0) / perLevel.length);
  const loss = perLevel.flat().reduce((s, m) => s + softplus(-m), 0) / perLevel.flat().length;
  return { ...implicitReward(margins), loss };
}
