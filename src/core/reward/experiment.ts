// Train and evaluate an experiment's reward model from its ratings.jsonl.
import { createHash } from 'node:crypto';
import { EmbeddingCache, statsBackbone, statsBackboneV1, type Backbone } from './backbone';
import { raterConsistency } from './consistency';
import type { PairExample, RewardHead } from './head';
import { pairMetrics, type PairMetrics } from './metrics';
import { loadRewardModel, saveRewardModel, type RewardCard } from './model';
import { loadOnnxBackbone } from './onnxBackbone';
import { withRunLock } from '../experiment/runLock';
import { isDiskFull, resolveInside } from '../fsutil';
import { mulberry32, shuffled } from '../random';
import { readRatings, type RatingsLog, type RatingsProblem } from './store';
import { AutodiffHeadTrainer } from './autodiffTrainer';
import { fitHeadUsingAll, type FitOptions } from './trainer';
import type { Rating } from './types';

/** A comparison with the rating it came from. */
export type RatedExample = PairExample & { rating: Rating };

/** Open a backbone by name: 'builtin:stats' (default, the newest built-in), 'builtin:stats-v1', or a path to an ONNX image encoder (file or folder). */
export async function openBackbone(spec: string | undefined): Promise<Backbone> {
  if (!spec || spec === 'builtin' || spec === 'builtin:stats' || spec === statsBackbone.id) return statsBackbone;
  if (spec === statsBackboneV1.id) return statsBackboneV1;
  return loadOnnxBackbone(spec);
}

/**
 * Embed both images of every non-skip rating (cached per file hash) and label it: 1 left won, 0 right won, 0.5 tie.
 * A rating whose image is missing, unreadable or not a PNG is left out with its line number, like a bad line.
 */
export async function ratingsToExamples(experimentDir: string, log: RatingsLog, backbone: Backbone): Promise<{ examples: RatedExample[]; problems: RatingsProblem[] }> {
  const used = log.ratings.filter((r) => r.choice !== 'skip');
  const cache = EmbeddingCache.forExperiment(experimentDir, backbone.id);
  const files = used.flatMap((r) => [resolveInside(experimentDir, r.left), resolveInside(experimentDir, r.right)]);
  const embs = await cache.embedFilesOrReasons(backbone, files);
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
    examples.push({ left, right, y: r.choice === 'left' ? 1 : r.choice === 'right' ? 0 : 0.5, rating: r });
  });
  return { examples, problems };
}

/** Deterministic held-out split by pair id, so a pair and its repeats land on the same side. */
export function isHeldOut(pairId: string, share: number): boolean {
  return createHash('sha256').update(pairId).digest().readUInt32BE(0) / 2 ** 32 < share;
}

/** Options for trainExperimentReward. */
export interface TrainRewardOptions extends FitOptions {
  backbone?: Backbone;
  heldOutShare?: number;
  onProgress?: (line: string) => void;
  /** What the experiment's run lock names as its holder while this runs (default "reward training"). */
  lockLabel?: string;
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
  const backbone = o.backbone ?? statsBackbone;
  const share = o.heldOutShare ?? 0.2;
  const { log, examples } = await readExamples(experimentDir, backbone, o.onProgress);
  const heldOut = examples.filter((e) => isHeldOut(e.rating.pairId, share));
  const trainAll = examples.filter((e) => !isHeldOut(e.rating.pairId, share));
  if (trainAll.length < 4) throw new Error(`only ${trainAll.length} usable training comparisons in ${experimentDir}; rate at least 10 pairs (skips do not count)`);
  const fitOnce = (xs: RatedExample[]) => {
    const s = shuffled(xs, mulberry32(o.seed ?? 0));
    const nVal = xs.length >= 12 ? Math.max(3, Math.round(xs.length * 0.15)) : 0;
    // the product's reward model trains through our ONNX autodiff, like the LoRA does
    return fitHeadUsingAll(s.slice(nVal), s.slice(0, nVal), { makeTrainer: (h, a) => new AutodiffHeadTrainer(h, a), ...o });
  };
  const learningCurve: RewardCard['learningCurve'] = [];
  if (heldOut.length) {
    for (const frac of [0.25, 0.5, 0.75]) {
      const sub = shuffled(trainAll, mulberry32(1)).slice(0, Math.round(trainAll.length * frac));
      if (sub.length < 8) continue;
      const m = pairMetrics((await fitOnce(sub)).head, heldOut);
      learningCurve.push({ comparisons: sub.length, accuracy: m.accuracy, logLoss: m.logLoss });
      o.onProgress?.(`learning curve: ${sub.length} comparisons -> held-out accuracy ${(m.accuracy * 100).toFixed(1)}%`);
    }
  }
  const fit = await fitOnce(trainAll);
  const metrics = pairMetrics(fit.head, heldOut);
  if (heldOut.length) learningCurve.push({ comparisons: trainAll.length, accuracy: metrics.accuracy, logLoss: metrics.logLoss });
  const rater = raterConsistency(log.ratings);
  const skips = log.ratings.filter((r) => r.choice === 'skip').length;
  const card: RewardCard = {
    format: 'ddpo-reward-card', version: 1, trainedAt: new Date().toISOString(), backbone: backbone.id,
    head: { kind: fit.head.kind, hidden: fit.head.kind === 'mlp' ? o.hidden ?? 32 : undefined, inputDim: fit.head.inputDim, bestEpoch: fit.bestEpoch },
    data: {
      ratings: log.ratings.length, comparisons: examples.length, ties: examples.filter((e) => e.y === 0.5).length,
      skips, unreadable: log.ratings.length - skips - examples.length, trainComparisons: trainAll.length, heldOutComparisons: heldOut.length,
    },
    heldOut: metrics, learningCurve, rater, summary: summarize(metrics, rater.estimatedConsistency, heldOut.length),
  };
  return { card: saveRewardModel(experimentDir, fit.head, card), head: fit.head, log };
}

/** Score the saved model on the experiment's current held-out ratings (and on all of them). */
export async function evalExperimentReward(experimentDir: string, backbone?: Backbone, heldOutShare = 0.2) {
  const { head, backbone: wanted } = loadRewardModel(experimentDir);
  const bb = backbone ?? (await openBackbone(wanted.startsWith('builtin:') ? wanted : undefined));
  if (bb.id !== wanted) throw new Error(`the reward model was trained on backbone ${wanted} but ${bb.id} was given; pass --backbone with the same encoder or retrain`);
  const { log, examples } = await readExamples(experimentDir, bb);
  const heldOut = pairMetrics(head, examples.filter((e) => isHeldOut(e.rating.pairId, heldOutShare)));
  const all = pairMetrics(head, examples);
  return { heldOut, all, rater: raterConsistency(log.ratings), problems: log.problems };
}

// The ratings log with the examples it gives; ratings whose images cannot be used join its problems, in line order.
async function readExamples(experimentDir: string, backbone: Backbone, onProgress?: (line: string) => void): Promise<{ log: RatingsLog; examples: RatedExample[] }> {
  const read = readRatings(experimentDir);
  onProgress?.(`embedding ${read.ratings.length} ratings with ${backbone.id}`);
  const { examples, problems } = await ratingsToExamples(experimentDir, read, backbone);
  return { log: { ...read, problems: [...read.problems, ...problems].sort((a, b) => a.line - b.line) }, examples };
}

/** One sentence telling the rater how well the model has learned them. */
export function summarize(m: PairMetrics, consistency: number, heldOut: number): string {
  if (heldOut === 0 || !Number.isFinite(m.accuracy)) return 'Not enough rated pairs to hold some out yet; keep rating to see how well the model knows you.';
  const acc = `${(m.accuracy * 100).toFixed(0)}%`;
  const ceil = Number.isFinite(consistency) ? ` You agree with yourself about ${(consistency * 100).toFixed(0)}% of the time, which is the most any model can reach.` : ' Some repeated pairs will show how consistent you are, which bounds what any model can reach.';
  return `On ${m.decisive} pairs it has not seen, the model predicts your choice ${acc} of the time.${ceil}`;
}
