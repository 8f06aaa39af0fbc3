import { wilson, type RateWithCI } from './stats';
import type { Rating } from './types';

/** How self-consistent the rater is (from side-swapped repeats) and how much they favour a side. */
export interface RaterConsistency {
  /** Repeats where both showings were decisive. */
  repeats: number;
  /** Share of those repeats where the same image won both times. */
  agreement: RateWithCI;
  /**
   * Per-answer consistency c implied by the agreement a, assuming independent mistakes: a = c² + (1-c)²,
   * so c = (1 + sqrt(2a - 1)) / 2. NaN without repeats.
   */
  estimatedConsistency: number;
  /** Share of decisive answers that chose the left side (0.5 = no position bias). */
  leftRate: RateWithCI;
}

/** Rater consistency and position bias from a list of effective ratings. */
export function raterConsistency(ratings: Rating[]): RaterConsistency {
  const byId = new Map(ratings.map((r) => [r.id, r]));
  const winner = (r: Rating) => (r.choice === 'left' ? r.left : r.choice === 'right' ? r.right : null);
  let repeats = 0, same = 0, left = 0, decisive = 0;
  for (const r of ratings) {
    if (r.choice === 'left' || r.choice === 'right') { decisive++; if (r.choice === 'left') left++; }
    const orig = r.repeatOf ? byId.get(r.repeatOf) : undefined;
    if (!orig) continue;
    const w1 = winner(orig), w2 = winner(r);
    if (w1 === null || w2 === null) continue;
    repeats++;
    if (w1 === w2) same++;
  }
  const agreement = wilson(same, repeats);
  const a = agreement.rate;
  const estimatedConsistency = repeats === 0 ? NaN : (1 + Math.sqrt(Math.max(0, 2 * a - 1))) / 2;
  return { repeats, agreement, estimatedConsistency, leftRate: wilson(left, decisive) };
}
