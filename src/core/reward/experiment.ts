// Train and evaluate an experiment's reward model from its ratings.jsonl.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EmbeddingCache, loadImageRGB, type Backbone } from './backbone';
import { rewardBackboneOf } from './backboneRef';
import { openBackbone, type OpenBackboneOptions } from './openBackbone';
import { raterConsistency } from './consistency';
import type { PairExample, RewardHead } from './head';
import { headInput, layoutFor, type FeatureLayout } from './headInput';
import { pairMetrics, type PairMetrics } from './metrics';
import { loadRewardModel, saveRewardModel, type RewardCard } from './model';
import { openRewardScorer, promptEmbeddings } from './scorer';
import { withRunLock } from '../experiment/runLock';
import { EXPERIMENT_FILE } from '../experiment/schema';
import { readExperiment } from '../experiment/store';
import { isDiskFull, resolveInside } from '../fsutil';
import { mulberry32, shuffled } from '../random';
import { readRatings, type RatingsLog, type RatingsProblem } from './store';
import { AutodiffHeadTrainer } from './autodiffTrainer';
import { isPriorName, PRIOR_NAMES, type PriorName } from './priorNames';
import { openPrior, type RewardPrior } from './priors';
import { priorOnlyHead, warmStartFrom, WarmHead } from './warmStart';
import { fitHeadUsingAll, type FitOptions, type FitResult } from './trainer';
import type { Rating } from './types';
import type { ImageRGB } from '../image/rgb';

/** A comparison with the rating it came from. */
export type RatedExample = PairExample & { rating: Rating };

/**
 * Embed both images of every non-skip rating (cached per file hash) and, for a prompt-aware layout, its prompt (cached
 * per prompt), and label it: 1 left won, 0 right won, 0.5 tie. A rating whose image is missing, unreadable or not a
 * PNG is left out with its line number, like a bad line.
 */
export async function ratingsToExamples(experimentDir: string, log: RatingsLog, backbone: Backbone, layout: FeatureLayout = layoutFor(backbone)): Promise<{ examples: RatedExample[]; problems: RatingsProblem[] }> {
  const used = log.ratings.filter((r) => r.choice !== 'skip');
  const cache = EmbeddingCache.forExperiment(experimentDir, backbone.id);
  const files = used.flatMap((r) => [resolveInside(experimentDir, r.left), resolveInside(experimentDir, r.right)]);
  const embs = await cache.embedFilesOrReasons(backbone, files);
  const prompts = await promptEmbeddings(backbone, layout, used.map((r) => r.prompt), cache);
  cache.save();
  const examples: RatedExample[] = [];
  const problems: RatingsProblem[] = [];
  used.forEach((r, i) => {
    const [left, right] = [embs[2 * i], embs[2 * i + 1]];
    if (typeof left === 'string' || typeof right === 'string') {
      const why = typeof left === 'string' ? left : right;
      problems.push({ line: log.lineOf.get(r) ?? 0, reason: `${why}; skipped`, text: JSON.stringify(r).slice(0, 200) });
      return;
    }
    const x = (e: Float32Array) => headInput(layout, e, prompts[i]);
    examples.push({ left: x(left), right: x(right), y: r.choice === 'left' ? 1 : r.choice === 'right' ? 0 : 0.5, rating: r });
  });
  return { examples, problems };
}

/**
 * The backbone an experiment's reward model trains on: the one experiment.json names, else the default for its model
 * (the built-in features for the embedded model, CLIP ViT-L/14 for others); a folder without experiment.json gets the
 * built-in features.
 */
export async function openExperimentBackbone(experimentDir: string, o: OpenBackboneOptions = {}): Promise<Backbone> {
  const file = path.join(experimentDir, EXPERIMENT_FILE);
  if (!fs.existsSync(file)) return openBackbone(undefined, o);
  return openBackbone(rewardBackboneOf(await readExperiment(experimentDir)), { ...o, baseDir: experimentDir, experimentFile: file });
}

/** The share of rated pairs the reward card holds out (and Diffusion-DPO with it, so both are scored on the same pairs). */
export const HELD_OUT_SHARE = 0.2;

/** Deterministic held-out split by pair id, so a pair and its repeats land on the same side. */
export function isHeldOut(pairId: string, share: number): boolean {
  return createHash('sha256').update(pairId).digest().readUInt32BE(0) / 2 ** 32 < share;
}

/**
 * How often a known utility (a simulated rater's taste) agrees with the decisive held-out ratings: what a reward model
 * that knew the taste exactly would score on the card, against the rater's own noise.
 */
export function heldOutUtilityAccuracy(experimentDir: string, utility: (img: ImageRGB, prompt: string) => number, share = HELD_OUT_SHARE): number {
  const held = readRatings(experimentDir).ratings.filter((r) => (r.choice === 'left' || r.choice === 'right') && isHeldOut(r.pairId, share));
  const u = (rel: string, prompt: string) => utility(loadImageRGB(resolveInside(experimentDir, rel)), prompt);
  return held.filter((r) => (u(r.left, r.prompt) > u(r.right, r.prompt)) === (r.choice === 'left')).length / held.length;
}

/** Options for trainExperimentReward. */
export interface TrainRewardOptions extends FitOptions {
  /** The backbone to embed with (the caller keeps it); default the experiment's, opened with `open` and released after. */
  backbone?: Backbone;
  /** How the experiment's backbone is opened: providers, Hub cache and download. */
  open?: OpenBackboneOptions;
  heldOutShare?: number;
  onProgress?: (line: string) => void;
  /** What the experiment's run lock names as its holder while this runs (default "reward training"). */
  lockLabel?: string;
  /** The built-in prior the head starts from (its weights found or fetched as `open` says); default the experiment's `rewardPrior`; `none`: start cold. */
  prior?: PriorName | 'none';
  /** Cancels the training: checked before each fit and before saving, so a cancelled training leaves the saved model as it was. */
  signal?: AbortSignal;
}

/** Train, evaluate on held-out pairs, save head + card (holding the experiment's run lock); returns the card and the trained head. */
export async function trainExperimentReward(experimentDir: string, o: TrainRewardOptions = {}): Promise<{ card: RewardCard; head: RewardHead; log: RatingsLog }> {
  try {
    return await withRunLock(experimentDir, o.lockLabel ?? 'reward training', () => trainRewardLocked(experimentDir, o), o.onProgress);
  } catch (e) {
    // the lock file or the embedding cache may be what found the disk full: the previous model is untouched either way
    if (!isDiskFull(e)) throw e;
    throw new Error(`Could not train the reward model in ${experimentDir}: the disk is full; the previous model there is kept. Free some disk space and train again.`, { cause: e });
  }
}

async function trainRewardLocked(experimentDir: string, o: TrainRewardOptions): Promise<{ card: RewardCard; head: RewardHead; log: RatingsLog }> {
  const backbone = o.backbone ?? (await openExperimentBackbone(experimentDir, { onLog: o.onProgress, ...o.open }));
  try {
    return await fitAndSave(experimentDir, backbone, o);
  } finally {
    if (!o.backbone) await backbone.dispose?.();
  }
}

async function fitAndSave(experimentDir: string, backbone: Backbone, o: TrainRewardOptions): Promise<{ card: RewardCard; head: RewardHead; log: RatingsLog }> {
  const share = o.heldOutShare ?? HELD_OUT_SHARE;
  const layout = layoutFor(backbone);
  const prior = await chosenPrior(experimentDir, backbone, o);
  const { log, examples } = await readExamples(experimentDir, backbone, layout, o.onProgress);
  o.signal?.throwIfAborted();
  const heldOut = examples.filter((e) => isHeldOut(e.rating.pairId, share));
  const trainAll = examples.filter((e) => !isHeldOut(e.rating.pairId, share));
  if (trainAll.length < 4) throw new Error(`only ${trainAll.length} usable training comparisons in ${experimentDir}; rate at least 10 pairs (skips do not count)`);
  const fitOnce: FitOnce = (xs, from) => {
    o.signal?.throwIfAborted();
    return fitRewardHead(xs, { ...o, wrap: from && warmStartFrom(from, layout, xs) });
  };
  const learningCurve = await learningCurveOf(trainAll, heldOut, (xs) => fitOnce(xs, prior), o.onProgress);
  const fit = await fitOnce(trainAll, prior);
  const metrics = pairMetrics(fit.head, heldOut);
  if (heldOut.length) learningCurve.push({ comparisons: trainAll.length, accuracy: metrics.accuracy, logLoss: metrics.logLoss });
  const warmStart = prior && heldOut.length ? await warmVsCold(prior, layout, trainAll, heldOut, metrics.accuracy, fitOnce, o.onProgress) : undefined;
  const rater = raterConsistency(log.ratings);
  const skips = log.ratings.filter((r) => r.choice === 'skip').length;
  const card: RewardCard = {
    format: 'ddpo-reward-card', version: 1, trainedAt: new Date().toISOString(),
    backbone: backbone.id, backboneLabel: backbone.label ?? backbone.id, ...(backbone.source ? { backboneSource: backbone.source } : {}),
    head: {
      kind: fit.head.kind, hidden: fit.head.kind === 'mlp' ? o.hidden ?? 32 : undefined, inputDim: fit.head.inputDim, bestEpoch: fit.bestEpoch, features: layout,
      ...(fit.head instanceof WarmHead ? { prior: { name: fit.head.prior.name, scale: fit.head.scale } } : {}),
    },
    data: {
      ratings: log.ratings.length, comparisons: examples.length, ties: examples.filter((e) => e.y === 0.5).length,
      skips, unreadable: log.ratings.length - skips - examples.length, trainComparisons: trainAll.length, heldOutComparisons: heldOut.length,
    },
    heldOut: metrics, learningCurve, ...(warmStart ? { warmStart } : {}), rater, summary: summarize(metrics, rater.estimatedConsistency, heldOut.length),
  };
  o.signal?.throwIfAborted();
  return { card: saveRewardModel(experimentDir, fit.head, card), head: fit.head, log };
}

type FitOnce = (xs: RatedExample[], from: RewardPrior | undefined) => Promise<FitResult>;

/**
 * How the card's head is fitted to training comparisons: 15% of them (once there are 12) pick the epoch count, then
 * every one of them trains, through our ONNX autodiff as the LoRA does.
 */
export function fitRewardHead(xs: PairExample[], o: FitOptions = {}): Promise<FitResult> {
  const s = shuffled(xs, mulberry32(o.seed ?? 0));
  const nVal = xs.length >= 12 ? Math.max(3, Math.round(xs.length * 0.15)) : 0;
  return fitHeadUsingAll(s.slice(nVal), s.slice(0, nVal), { makeTrainer: (h, a) => new AutodiffHeadTrainer(h, a), ...o });
}

// Held-out accuracy after training on growing shares of the training comparisons (the last point, all of them, is the caller's).
async function learningCurveOf(trainAll: RatedExample[], heldOut: RatedExample[], fit: (xs: RatedExample[]) => Promise<FitResult>, onProgress?: (line: string) => void): Promise<RewardCard['learningCurve']> {
  const curve: RewardCard['learningCurve'] = [];
  if (!heldOut.length) return curve;
  for (const frac of [0.25, 0.5, 0.75]) {
    const sub = shuffled(trainAll, mulberry32(1)).slice(0, Math.round(trainAll.length * frac));
    if (sub.length < 8) continue;
    const m = pairMetrics((await fit(sub)).head, heldOut);
    curve.push({ comparisons: sub.length, accuracy: m.accuracy, logLoss: m.logLoss });
    onProgress?.(`learning curve: ${sub.length} comparisons -> held-out accuracy ${(m.accuracy * 100).toFixed(1)}%`);
  }
  return curve;
}

/** The training comparisons at which the card compares a warm start with a cold one (all of them is added). */
export const WARM_START_COUNTS = [8, 16, 32, 64] as const;

// Held-out accuracy of a cold and a warm head trained on the same first comparisons, at a few counts and at all of them.
async function warmVsCold(prior: RewardPrior, layout: FeatureLayout, trainAll: RatedExample[], heldOut: RatedExample[], warmAll: number, fitOnce: FitOnce, onProgress?: (line: string) => void): Promise<NonNullable<RewardCard['warmStart']>> {
  const order = shuffled(trainAll, mulberry32(1));
  const acc = async (xs: RatedExample[], from?: RewardPrior) => pairMetrics((await fitOnce(xs, from)).head, heldOut).accuracy;
  const points: NonNullable<RewardCard['warmStart']>['points'] = [];
  for (const n of WARM_START_COUNTS.filter((c) => c < trainAll.length)) {
    const sub = order.slice(0, n);
    points.push({ comparisons: n, cold: await acc(sub), warm: await acc(sub, prior) });
  }
  points.push({ comparisons: trainAll.length, cold: await acc(trainAll), warm: warmAll });
  const priorAccuracy = pairMetrics(priorOnlyHead(prior, layout, trainAll[0].left.length), heldOut).accuracy;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  onProgress?.(`warm start from ${prior.name}: ${pct(priorAccuracy)} before any rating; ${points.map((p) => `${p.comparisons}: cold ${pct(p.cold)}, warm ${pct(p.warm)}`).join('; ')}`);
  return { prior: prior.name, priorAccuracy, points };
}

// The prior the head starts from: the option, else the experiment's `rewardPrior`; none when neither names one.
async function chosenPrior(experimentDir: string, backbone: Backbone, o: TrainRewardOptions): Promise<RewardPrior | undefined> {
  const file = path.join(experimentDir, EXPERIMENT_FILE);
  const name = o.prior ?? (fs.existsSync(file) ? (await readExperiment(experimentDir)).rewardPrior : undefined);
  if (name === undefined || name === 'none') return undefined;
  if (!isPriorName(name)) throw new Error(`unknown reward prior "${name}" in ${file}: use one of ${PRIOR_NAMES.join(', ')}, or remove "rewardPrior" to start the reward model cold`);
  return openPrior(name, backbone, { ...o.open, onLog: o.open?.onLog ?? o.onProgress, experimentDir });
}

/**
 * Score the saved model on the experiment's current held-out ratings (and on all of them), on the backbone it was
 * trained on, or on `backbone` when given (which must be that one).
 */
export async function evalExperimentReward(experimentDir: string, backbone?: Backbone, heldOutShare = HELD_OUT_SHARE, open: OpenBackboneOptions = {}) {
  const saved = loadRewardModel(experimentDir);
  if (backbone && backbone.id !== saved.backbone && saved.backbone !== 'unknown') {
    throw new Error(`the reward model was trained on backbone ${saved.backbone} but ${backbone.id} was given; pass --backbone with the same encoder or retrain`);
  }
  const scorer = backbone ? undefined : await openRewardScorer(experimentDir, open);
  try {
    const { log, examples } = await readExamples(experimentDir, backbone ?? scorer!.backbone, saved.features);
    const heldOut = pairMetrics(saved.head, examples.filter((e) => isHeldOut(e.rating.pairId, heldOutShare)));
    const all = pairMetrics(saved.head, examples);
    return { heldOut, all, rater: raterConsistency(log.ratings), problems: log.problems };
  } finally {
    await scorer?.release();
  }
}

// The ratings log with the examples it gives; ratings whose images cannot be used join its problems, in line order.
async function readExamples(experimentDir: string, backbone: Backbone, layout: FeatureLayout, onProgress?: (line: string) => void): Promise<{ log: RatingsLog; examples: RatedExample[] }> {
  const read = readRatings(experimentDir);
  onProgress?.(`embedding ${read.ratings.length} ratings with ${backbone.label ?? backbone.id}${layout === 'image' ? '' : ' and their prompts'}`);
  const { examples, problems } = await ratingsToExamples(experimentDir, read, backbone, layout);
  return { log: { ...read, problems: [...read.problems, ...problems].sort((a, b) => a.line - b.line) }, examples };
}

/** One sentence telling the rater how well the model has learned them. */
export function summarize(m: PairMetrics, consistency: number, heldOut: number): string {
  if (heldOut === 0 || !Number.isFinite(m.accuracy)) return 'Not enough rated pairs to hold some out yet; keep rating to see how well the model knows you.';
  const acc = `${(m.accuracy * 100).toFixed(0)}%`;
  const ceil = Number.isFinite(consistency) ? ` You agree with yourself about ${(consistency * 100).toFixed(0)}% of the time, which is the most any model can reach.` : ' Some repeated pairs will show how consistent you are, which bounds what any model can reach.';
  return `On ${m.decisive} pairs it has not seen, the model predicts your choice ${acc} of the time.${ceil}`;
}
