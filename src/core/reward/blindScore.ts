/**
 * Scoring of blind comparisons: a tie counts half a win, a skip is no judgement. "tuned" is the model under test and
 * "base" the one it is measured against: the fine-tuned and the base model in the demo; in the studio's comparisons,
 * model B and model A, whichever each is (the base model, or a DDPO or Diffusion-DPO checkpoint; its manifest says).
 */
import { winRateWithCI, type RateWithCI } from './stats';
import type { Choice } from '../../protocol';

/** What one blind judgement said: the tuned image won, the base image won, a tie, or a skip. */
export type BlindOutcome = 'tuned' | 'base' | 'tie' | 'skip';

/** The tally of a blind comparison and the tuned model's win rate. */
export interface BlindScore {
  wins: number;
  losses: number;
  ties: number;
  /** Shown but not judged: counted here only, not in the win rate or its n. */
  skips: number;
  /** Tuned over base, ties counted half, with a 95% Wilson interval over wins + losses + ties. */
  winRate: RateWithCI;
}

/** The outcome of a rater's choice when the tuned image was shown on `tunedSide`. */
export function blindOutcome(choice: Choice, tunedSide: 'left' | 'right'): BlindOutcome {
  if (choice === 'tie' || choice === 'skip') return choice;
  return choice === tunedSide ? 'tuned' : 'base';
}

/** Tallies blind outcomes; skips are counted apart and change nothing else. */
export function scoreBlind(outcomes: Iterable<BlindOutcome>): BlindScore {
  const n = { tuned: 0, base: 0, tie: 0, skip: 0 };
  for (const o of outcomes) n[o]++;
  return { wins: n.tuned, losses: n.base, ties: n.tie, skips: n.skip, winRate: winRateWithCI(n.tuned, n.base, n.tie) };
}
