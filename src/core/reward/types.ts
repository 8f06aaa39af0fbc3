import type { Choice } from '../../protocol';

/** An 8-bit RGB image, row-major, 3 bytes per pixel (HWC). */
export interface ImageRGB {
  width: number;
  height: number;
  /** RGB HWC, length width*height*3. */
  data: Uint8Array;
}

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

/** Convert a Float32 CHW image in [-1,1] (VAE output) to uint8 RGB HWC, as DDPO does: round((x+1)/2*255), clamped. */
export function chwToImageRGB(chw: Float32Array, width: number, height: number): ImageRGB {
  const plane = width * height;
  if (chw.length !== 3 * plane) throw new Error(`chwToImageRGB: expected 3x${height}x${width}=${3 * plane} floats, got ${chw.length}`);
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = Math.round(((chw[c * plane + i] + 1) / 2) * 255);
      data[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data };
}
