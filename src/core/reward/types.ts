import type { Choice } from '../../protocol';
import type { ImageRGB } from '../image/rgb';

/** One rating as appended to `ratings.jsonl`; image paths are relative to the experiment folder. */
export interface Rating {
  kind: 'rating';
  /** Unique id of this rating (retractions point at it). */
  id: string;
  /** The pair that was shown; repeats of a pair share it. */
  pairId: string;
  prompt: string;
  /** Image shown on the left / right (experiment-relative paths). */
  left: string;
  right: string;
  choice: Choice;
  /** ISO time of the answer. */
  time: string;
  rater: string;
  /** 'ab' when the pair's first image was shown on the left, 'ba' when sides were swapped. */
  sideOrder: 'ab' | 'ba';
  /** Set when this showing repeats an earlier rating with sides swapped. */
  repeatOf?: string;
  /** Milliseconds the rater looked at the pair, when known. */
  elapsedMs?: number;
}

/** An appended undo: the rating with this id no longer counts. */
export interface Retraction {
  kind: 'retract';
  id: string;
  time: string;
}

/** Any line of `ratings.jsonl`. */
export type RatingsRecord = Rating | Retraction;
