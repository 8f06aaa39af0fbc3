/** The DDPO loop: per epoch evaluate, sample, score, normalise advantages, PPO-update, log, checkpoint. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { appendLineDurable, atomicWriteFile } from '../fsutil';
import { encodePng } from '../image/png';
import type { ImageRGB } from '../image/rgb';
import { globalAdvantages, meanStd, PerPromptStatTracker, perPromptStats } from './advantages';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint, type LoopState } from './checkpoint';
import { DEFAULT_DDPO_CONFIG, type DdpoConfig } from './config';
import { assertFinite, KlGuard, NonFiniteError } from './guards';
import { DdpoLayout, evalDirOf } from './layout';
import { EpochMetrics, EvalImage, jsonSafe, readMetrics, truncateMetrics } from './metrics';
import { trainEpoch, type OldLogProbSource } from './ppo';
import { RunRngs } from './random';
import { PromptSource, sampleEpoch, uniformPrompts } from './sampling';
import type { DdpoProgress, Policy, PolicyState, RewardFn } from './types';

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

// What an epoch started from: where train_kl_guard goes back to.
interface EpochStart { policy: PolicyState; rng: LoopState['rng']; tracker: LoopState['statTracker']; globalStep: number }

/** Runs epochs until num_epochs; a NaN/Inf throws NonFiniteError after recording it in status.json. */
export async function runDdpo(opts: DdpoRunOptions): Promise<DdpoRunResult> {
  const { config: c, layout, policy } = opts;
  const log = opts.onLog ?? (() => undefined);
  await fs.promises.mkdir(layout.runDir, { recursive: true });
  const promptSource = Array.isArray(opts.prompts) ? uniformPrompts(opts.prompts) : opts.prompts;
  const evalPrompts = c.eval_prompts.length ? c.eval_prompts : Array.isArray(opts.prompts) ? opts.prompts.slice(0, 4) : [];

  let rngs = RunRngs.fromSeed(c.seed);
  let tracker = c.per_prompt_stat_tracking ? new PerPromptStatTracker(c.per_prompt_stat_tracking_buffer_size, c.per_prompt_stat_tracking_min_count) : null;
  let globalStep = 0;
  let firstEpoch = 0;
  const ckpt = opts.resume || c.resume_from ? (c.resume_from ? loadCheckpoint(path.resolve(layout.experimentDir, c.resume_from)) : latestCheckpoint(layout.checkpointsDir)) : undefined;
  if (ckpt) {
    await policy.loadState(ckpt.policy);
    rngs = RunRngs.fromState(ckpt.loop.rng);
    if (tracker && ckpt.loop.statTracker) tracker = PerPromptStatTracker.fromState(ckpt.loop.statTracker);
    globalStep = ckpt.loop.globalStep;
    firstEpoch = ckpt.loop.epoch + 1;
    for (const w of configChanges(ckpt.loop.config, c)) log(`warning: ${w} since the checkpoint; the resumed run will not match an uninterrupted one`);
    await truncateMetrics(layout.metricsFile, ckpt.loop.epoch);
    log(`resuming from ${ckpt.dir} (epoch ${firstEpoch} of ${c.num_epochs}, global step ${globalStep})`);
  } else if (opts.resume) {
    log('no checkpoint to resume from; starting at epoch 0');
    await truncateMetrics(layout.metricsFile, -1);
  } else if (readMetrics(layout.metricsFile).length > 0) {
    throw new Error(`${layout.runDir} already holds a DDPO run; pass --resume to continue it, or delete that folder to start over`);
  }

  const status = (state: string, extra: Record<string, unknown> = {}) =>
    atomicWriteFile(layout.statusFile, JSON.stringify({ state, pid: process.pid, updated: new Date().toISOString(), ...extra }, null, 1) + '\n');
  const progress = (epoch: number, phase: DdpoProgress['phase'], done: number, total: number) =>
    opts.onProgress?.({ epoch, numEpochs: c.num_epochs, phase, done, total });
  const metrics: EpochMetrics[] = [];
  // the epochs a resumed run already has (none for a new one)
  const earlier = readMetrics(layout.metricsFile);
  // train_kl_guard, knowing the approx_kl of the epochs before this one (a resumed run's too)
  const klGuard = c.train_kl_guard > 0 ? new KlGuard(c.train_kl_guard, earlier.map((m) => m.approx_kl)) : undefined;
  // the state a 'suspect' epoch (a first KL spike) started from: where a second spike in a row goes back to
  let suspect: { epoch: number; approxKl: number; ratio: number; start: EpochStart } | undefined;
  let stoppedEarly: DdpoRunResult['stoppedEarly'];
  const loopState = (e: number, step: number, rng: LoopState['rng'], statTracker: LoopState['statTracker']): LoopState =>
    ({ format: 1, epoch: e, globalStep: step, rng, statTracker, config: c, savedAt: new Date().toISOString() });
  let epoch = firstEpoch;
  let warnedClipBefore = false;
  // train_old_log_probs 'auto': once an epoch found the sampler's log-probabilities off, later ones rescore from the
  // start (a resumed run remembers it from metrics.jsonl)
  let oldLogProbs: OldLogProbSource | undefined = earlier.some((m) => m.old_log_probs === 'training_graph') ? 'training_graph' : undefined;
  let lastCheckpointSeconds = 0;
  try {
    for (; epoch < c.num_epochs; epoch++) {
      await status('running', { epoch, global_step: globalStep });
      const start: EpochStart | undefined = klGuard ? { policy: await policy.saveState(), rng: rngs.state(), tracker: tracker?.state() ?? null, globalStep } : undefined;
      const t = { eval: 0, sample: 0, reward: 0, train: 0, checkpoint: 0, total: 0 };
      const tEpoch = performance.now();
      let mark = performance.now();
      const lap = () => { const now = performance.now(); const s = (now - mark) / 1000; mark = now; return s; };

      let evalImages: EvalImage[] | undefined;
      if (epoch % c.log_image_freq === 0 && evalPrompts.length > 0) {
        progress(epoch, 'eval', 0, evalPrompts.length * c.eval_seeds.length);
        evalImages = await evaluate(opts, evalPrompts, epoch, globalStep);
      }
      t.eval = lap();

      const rewardSeconds = { value: 0 };
      const samples = await sampleEpoch({
        config: c, policy, reward: opts.reward, promptSource, promptRng: rngs.prompts, noiseRng: rngs.noise, epoch, globalStep,
        signal: opts.signal, rewardSeconds, onBatch: (d, n) => progress(epoch, 'sample', d, n),
      });
      t.reward = rewardSeconds.value;
      t.sample = lap() - t.reward;

      const advantages = tracker ? tracker.update(samples.prompts, samples.rewards) : globalAdvantages(samples.rewards);
      assertFinite(advantages, 'advantage', epoch, globalStep, 'reward');
      const train = await trainEpoch({ config: c, policy, shuffleRng: rngs.shuffle, epoch, globalStep, oldLogProbs, signal: opts.signal, onStep: (d, n) => progress(epoch, 'train', d, n) }, samples, advantages);
      if (train.old_log_probs === 'training_graph' && !oldLogProbs && c.train_old_log_probs === 'auto') {
        log(`epoch ${epoch}: the sampler's log-probabilities differ from the training graph's by up to ${train.logprob_mismatch?.toExponential(1)} though the ` +
          `LoRA had not changed, more than train_clip_range ${c.train_clip_range} (float16 rounds differently in the two graphs), so PPO would clip ` +
          'transitions that never moved. From here on PPO compares against the training graph\'s own log-probabilities, scored before each ' +
          'epoch\'s first optimizer step (one more graph run for each transition trained after it; train_old_log_probs "sampler" keeps TRL\'s behaviour).');
      }
      if (train.old_log_probs === 'training_graph') oldLogProbs = 'training_graph';
      globalStep = train.globalStep;
      t.train = lap();

      const rewardStats = meanStd(samples.rewards);
      const advStats = meanStd(advantages);
      const line: EpochMetrics = {
        epoch, global_step: globalStep, reward_mean: rewardStats.mean, reward_std: rewardStats.std,
        reward_per_prompt: perPromptStats(samples.prompts, samples.rewards),
        approx_kl: train.approx_kl, clipfrac: train.clipfrac, clipfrac_before_update: train.clipfrac_before_update, old_log_probs: train.old_log_probs,
        ...(train.logprob_mismatch !== undefined ? { logprob_mismatch: train.logprob_mismatch } : {}), loss: train.loss, grad_norm: train.grad_norm,
        advantage_mean: advStats.mean, advantage_std: advStats.std,
        seconds: t, ...(evalImages ? { eval: evalImages, eval_reward_mean: meanStd(evalImages.map((e) => e.reward)).mean } : {}),
        time: new Date().toISOString(),
      };
      // train_kl_guard: a second spike in a row means the policy diverged; both lines are written, and the state from
      // before the first spike is kept. A suspect epoch is checkpointed only as the last (no epoch follows to confirm it).
      const verdict = klGuard?.judge(train.approx_kl) ?? { kind: 'calm' };
      if (verdict.kind !== 'calm') line.kl_guard = { median: verdict.median, factor: c.train_kl_guard };
      const diverged = verdict.kind === 'diverged' ? suspect : undefined;
      suspect = verdict.kind === 'suspect' && start ? { epoch, approxKl: train.approx_kl, ratio: train.approx_kl / verdict.median, start } : undefined;
      const last = epoch === c.num_epochs - 1;
      const saveNow = !diverged && (!suspect || last) && ((epoch + 1) % c.save_freq === 0 || last);
      t.checkpoint = lastCheckpointSeconds;
      t.total = (performance.now() - tEpoch) / 1000;
      // The metrics line goes first: a kill before the checkpoint is complete re-runs this epoch and rewrites it.
      await appendLineDurable(layout.metricsFile, JSON.stringify(jsonSafe(line)));
      if (saveNow) {
        progress(epoch, 'checkpoint', 0, 1);
        await saveCheckpoint(layout.checkpointsDir, loopState(epoch, globalStep, rngs.state(), tracker?.state() ?? null), await policy.saveState(), await policy.lora(), c.num_checkpoint_limit);
        lastCheckpointSeconds = lap();
      } else lastCheckpointSeconds = 0;
      metrics.push(line);
      opts.onEpoch?.(line);
      if (train.clipfrac_before_update > 0 && !warnedClipBefore) {
        warnedClipBefore = true;
        log(`warning: epoch ${epoch}: ${(100 * train.clipfrac_before_update).toFixed(0)}% of the items PPO trained before the first optimizer step were ` +
          `already clipped, though the LoRA had not changed since sampling: the training graph recomputes the sampler's log-probabilities ` +
          `differently (by up to ${train.logprob_mismatch?.toExponential(1)}), more than train_clip_range ${c.train_clip_range} (float16 rounding differs between the two graphs), so clipping ` +
          'also removes gradient that was never off-policy. train_old_log_probs "auto" or "training_graph" (old log-probabilities from the ' +
          'training graph), a larger train_clip_range, or mixed_precision "no" (float32) avoids it.');
      }
      log(`epoch ${epoch}: reward ${rewardStats.mean.toFixed(4)} ± ${rewardStats.std.toFixed(4)}, kl ${train.approx_kl.toExponential(2)}, clipfrac ${train.clipfrac.toFixed(3)}, ${t.total.toFixed(1)} s` + (saveNow ? `, checkpoint ${lastCheckpointSeconds.toFixed(1)} s` : ''));
      if (diverged && verdict.kind === 'diverged') {
        // keep (and checkpoint) the weights the first spiking epoch started from, and stop
        const { start: kept, epoch: first } = diverged;
        await policy.loadState(kept.policy);
        globalStep = kept.globalStep;
        if (first > 0) await saveCheckpoint(layout.checkpointsDir, loopState(first - 1, kept.globalStep, kept.rng, kept.tracker), kept.policy, await policy.lora(), c.num_checkpoint_limit);
        // counted from 1 like the progress display ("epoch 28/30"); metrics.jsonl and checkpoint folders count from 0
        const message = `stopped early in epoch ${epoch + 1}/${c.num_epochs}: approx KL spiked two epochs in a row, to ${diverged.approxKl.toExponential(2)} in epoch ${first + 1} ` +
          `and ${train.approx_kl.toExponential(2)} in epoch ${epoch + 1} (${times(diverged.ratio)} and ${times(train.approx_kl / verdict.median)} the median of the epochs before, ` +
          `train_kl_guard ${c.train_kl_guard}); the policy diverged, so the LoRA ${first > 0 ? `after epoch ${first}/${c.num_epochs}` : 'of the base model'} is kept`;
        log(message);
        stoppedEarly = { epoch, keptEpoch: first - 1, message };
        break;
      }
    }
    await status('done', stoppedEarly
      ? { epoch: stoppedEarly.keptEpoch, global_step: globalStep, stopped_early: true, message: stoppedEarly.message }
      : { epoch: c.num_epochs - 1, global_step: globalStep });
    progress(stoppedEarly?.epoch ?? c.num_epochs - 1, 'done', 1, 1);
  } catch (e) {
    const stopped = opts.signal?.aborted === true;
    await status(stopped ? 'stopped' : 'failed', {
      epoch, global_step: globalStep, message: (e as Error).message,
      ...(e instanceof NonFiniteError ? { global_step: e.step, phase: e.phase, what: e.what } : {}),
    }).catch(() => undefined);
    throw e;
  }
  return { firstEpoch, lastEpoch: stoppedEarly?.keptEpoch ?? c.num_epochs - 1, metrics, ...(stoppedEarly ? { stoppedEarly } : {}) };
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

// "186x"; "2.7e+42x" once a policy has blown up.
const times = (ratio: number) => `${ratio < 1e6 ? ratio.toFixed(0) : ratio.toExponential(1)}x`;

// Settings whose change breaks "resume reproduces the uninterrupted run" (train_timesteps_per_run changes only the
// order of float sums; checkpoints from before it existed lack it).
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
