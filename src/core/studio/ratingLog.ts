/**
 * A ratings log as the rating panel sees it: how many count, how consistent the rater is, what Undo takes back, what
 * the queue leaves out or brings back, and in a blind comparison the win rate. Worked out wherever the log was just
 * read (the worker after each rating), so nobody reads it again to redraw.
 */
import * as os from 'node:os';
import { raterConsistency } from '../reward/consistency';
import { readRatings } from '../reward/store';
import type { Rating } from '../reward/types';
import { compareDir, compareResult, listComparisons, type CompareResult } from './compare';
import type { WinRateView } from '../../protocol';
import { dueRepeats } from './pairs';

/** Who rates at this machine's rating panel, as each of their ratings records it: the account's user name. */
export function studioRater(): string {
  return os.userInfo().username || 'me';
}

/** The folder whose `ratings.jsonl` holds an experiment's ratings, or those of its comparison `compareId`. */
export function ratingsDir(experimentDir: string, compareId: string | undefined): string {
  return compareId === undefined ? experimentDir : compareDir(experimentDir, compareId);
}

/** Reads and summarizes the ratings of an experiment, or of its comparison `compareId`. */
export function readRatingLog(experimentDir: string, compareId?: string) {
  return summarizeRatings(experimentDir, compareId, readRatings(ratingsDir(experimentDir, compareId)).ratings);
}

/**
 * Summarizes `ratings`, the effective ratings of an experiment's log or of its comparison `compareId`'s log (the
 * fields are those of `RatingLogView` in src/protocol.ts: the worker sends this as its reply).
 */
export function summarizeRatings(experimentDir: string, compareId: string | undefined, ratings: Rating[]) {
  const c = raterConsistency(ratings);
  const last = ratings.at(-1);
  const manifest = compareId === undefined ? undefined : listComparisons(experimentDir).find((m) => m.id === compareId);
  return {
    rated: ratings.length,
    consistency: c.repeats > 0 && Number.isFinite(c.estimatedConsistency) ? c.estimatedConsistency : null,
    repeats: c.repeats,
    last: last ? { id: last.id, pairId: last.pairId, ...(last.repeatOf ? { repeatOf: last.repeatOf } : {}) } : null,
    ratedPairs: [...new Set(ratings.map((r) => r.pairId))],
    // a blind comparison shows each pair once: no repeats; a repeat measures one rater's consistency, so only the
    // ratings of the person at the panel come back (not those of another rater, e.g. the demo's simulated one)
    dueRepeats: compareId === undefined ? dueRepeats(ratings.filter((r) => r.rater === studioRater())) : [],
    ...(manifest ? { winRate: winRateOf(compareResult(experimentDir, manifest, ratings)) } : {}),
  };
}

// B's win rate over A, named: "DDPO epoch 20 vs base model".
function winRateOf(r: CompareResult): WinRateView {
  return { ...r.winRate, label: r.label };
}
