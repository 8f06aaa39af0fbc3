/** One experiment's progress read from its folder: ratings, reward model, fine-tuning run, comparisons. */
import * as fs from 'node:fs';
import { describeBackboneRef } from '../reward/backboneRef';
import { raterConsistency } from '../reward/consistency';
import { rewardPaths, type RewardCard } from '../reward/model';
import { readRatings } from '../reward/store';
import type { RewardBackboneRef } from '../experiment/schema';
import type { TrainingAlgorithm } from '../../protocol';
import { compareResult, listComparisons, type CompareResult } from './compare';
import { hasRun, readRunState, type RunState } from './runState';

/** What the Experiments tree shows below an experiment. */
export interface ExperimentSummary {
  ratings: number;
  /** Per-answer consistency from repeats, null before any repeat. */
  consistency: number | null;
  /**
   * `backbone`: what the model was trained on, named for people (absent in summaries made without a card), and
   * `backboneRef` where it was opened from (the card's id and folder); `ratings`: how many it was trained from.
   */
  reward?: { accuracy: number; heldOut: number; comparisons: number; trainedAt: string; backbone?: string; backboneRef?: RewardBackboneRef; ratings?: number; warmStart?: string; curve?: string };
  /** The DDPO run (idle when there is none). */
  run: RunState;
  /** The Diffusion-DPO run, when the experiment has one. */
  dpoRun?: RunState;
  comparisons: CompareResult[];
}

/** Reads the summary; never throws for missing files (an empty experiment has empty parts). `runningHere` is per algorithm. */
export function readSummary(experimentDir: string, runningHere: boolean | ((a: TrainingAlgorithm) => boolean)): ExperimentSummary {
  const running = (a: TrainingAlgorithm) => (typeof runningHere === 'function' ? runningHere(a) : runningHere && a === 'ddpo');
  const log = readRatings(experimentDir);
  const c = raterConsistency(log.ratings);
  let reward: ExperimentSummary['reward'];
  try {
    const card = JSON.parse(fs.readFileSync(rewardPaths(experimentDir).card, 'utf8'));
    const backbone = typeof card.backboneLabel === 'string' ? card.backboneLabel : typeof card.backbone === 'string' ? describeBackboneRef({ id: card.backbone }) : undefined;
    const backboneRef = typeof card.backboneSource?.id === 'string' ? card.backboneSource : typeof card.backbone === 'string' ? { id: card.backbone } : undefined;
    reward = { accuracy: Number(card.heldOut?.accuracy), heldOut: card.data?.heldOutComparisons ?? 0, comparisons: card.data?.comparisons ?? 0, trainedAt: card.trainedAt, backbone, backboneRef, ratings: typeof card.data?.ratings === 'number' ? card.data.ratings : undefined, warmStart: formatWarmStart(card.warmStart), curve: formatLearningCurve(card.learningCurve) };
  } catch {
    // not trained yet
  }
  return {
    ratings: log.ratings.length,
    consistency: c.repeats > 0 && Number.isFinite(c.estimatedConsistency) ? c.estimatedConsistency : null,
    reward,
    run: readRunState(experimentDir, running('ddpo')),
    ...(hasRun(experimentDir, 'diffusion-dpo') || running('diffusion-dpo') ? { dpoRun: readRunState(experimentDir, running('diffusion-dpo'), 'diffusion-dpo') } : {}),
    comparisons: listComparisons(experimentDir).map((m) => compareResult(experimentDir, m)),
  };
}

/** The state of the run of `algorithm` in a summary; a Diffusion-DPO run not begun reads as idle, with ddpo.json's epochs. */
export function summaryRun(experimentDir: string, s: ExperimentSummary, algorithm: TrainingAlgorithm): RunState {
  return algorithm === 'ddpo' ? s.run : s.dpoRun ?? readRunState(experimentDir, false, algorithm);
}

/** The card's warm-vs-cold comparison in one line ("Started from aesthetic (61% before any rating). Held-out accuracy, cold → warm: 8 ratings 55% → 63%, …"); undefined without one. */
export function formatWarmStart(w: RewardCard['warmStart'] | undefined): string | undefined {
  if (!w || !Array.isArray(w.points)) return undefined;
  const p = (x: number) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a');
  return `Started from ${w.prior} (${p(w.priorAccuracy)} before any rating). Held-out accuracy, cold → warm: ${w.points.map((q) => `${q.comparisons} comparisons ${p(q.cold)} → ${p(q.warm)}`).join(', ')}`;
}

/** How held-out accuracy grew with the comparisons trained on ("Held-out accuracy by comparisons: 8 → 55%, 16 → 61%, 40 → 70%"); undefined without points. */
export function formatLearningCurve(curve: RewardCard['learningCurve'] | undefined): string | undefined {
  const points = Array.isArray(curve) ? curve.filter((q) => Number.isFinite(q.accuracy)) : [];
  if (points.length === 0) return undefined;
  return `Held-out accuracy by comparisons trained on: ${points.map((q) => `${q.comparisons} → ${Math.round(q.accuracy * 100)}%`).join(', ')}`;
}

/** "62% (95% CI 41–79%, n=8)", or "not rated yet". */
export function formatWinRate(r: { rate: number; low: number; high: number; n: number }): string {
  if (!(r.n > 0) || !Number.isFinite(r.rate)) return 'not rated yet';
  const p = (x: number) => `${Math.round(x * 100)}%`;
  return `${p(r.rate)} (95% CI ${p(r.low)}–${p(r.high)}, n=${r.n})`;
}
