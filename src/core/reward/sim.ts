import { foregroundStats } from './features';
import { mulberry32 } from '../random';
import type { ImageRGB } from '../image/rgb';
import type { Choice } from '../../protocol';

/** Parameters of a procedural test image: one shape on a flat background. */
export interface ShapeParams {
  shape: 'disc' | 'square';
  /** Centre in [0,1] image coordinates. */
  cx: number;
  cy: number;
  /** Half-size as a fraction of the image width. */
  radius: number;
  color: [number, number, number];
  background: [number, number, number];
}

/** Random shape parameters (sizes, positions and colours spread widely). */
export function randomShape(rng: () => number): ShapeParams {
  const rgb = (lo: number, hi: number): [number, number, number] => [0, 0, 0].map(() => Math.round(lo + rng() * (hi - lo))) as [number, number, number];
  return { shape: rng() < 0.5 ? 'disc' : 'square', cx: 0.15 + rng() * 0.7, cy: 0.15 + rng() * 0.7, radius: 0.06 + rng() * 0.25, color: rgb(0, 255), background: rgb(90, 150) };
}

/** Render a shape image of size x size pixels. */
export function renderShape(p: ShapeParams, size = 32): ImageRGB {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const dx = (x + 0.5) / size - p.cx, dy = (y + 0.5) / size - p.cy;
    const inside = p.shape === 'disc' ? dx * dx + dy * dy <= p.radius * p.radius : Math.abs(dx) <= p.radius && Math.abs(dy) <= p.radius;
    const col = inside ? p.color : p.background;
    data.set(col, (y * size + x) * 3);
  }
  return { width: size, height: size, data };
}

/** The demo rater's taste: larger, more centred, warmer (red over blue) subjects score higher. */
export function shapeTasteUtility(img: ImageRGB): number {
  const s = foregroundStats(img);
  return 2 * Math.sqrt(s.area) - 2 * Math.hypot(s.cx - 0.5, s.cy - 0.5) + (s.r - s.b);
}

/** Options of a simulated rater. */
export interface SimulatedRaterOptions {
  /** Share of decisive answers that agree with the rater's own utility, over typical pairs (0.5..1). */
  consistency: number;
  /**
   * How mistakes fall: 'bradley-terry' (default) errs mostly on close pairs, P(better) = σ(Δu/T) with T set so
   * the average over typical pairs is `consistency`; 'uniform' errs with probability 1-consistency on every pair.
   */
  noise?: 'bradley-terry' | 'uniform';
  /** Utilities of typical images, to set T for 'bradley-terry' (required for that mode unless temperature is given). */
  typicalUtilities?: number[];
  temperature?: number;
  /** Probability of answering tie regardless of the pair. */
  tieRate?: number;
  /** Probability of lazily answering left regardless of the pair (position bias). */
  leftBias?: number;
  seed?: number;
  /** The rater's taste; `prompt` is what the image was made for (a taste may depend on it). */
  utility?: (img: ImageRGB, prompt?: string) => number;
}

/** The temperature T at which the mean of σ(|ui-uj|/T) over all pairs of `utils` equals `consistency`. */
export function temperatureForConsistency(utils: number[], consistency: number): number {
  const gaps: number[] = [];
  for (let i = 0; i < utils.length; i++) for (let j = i + 1; j < utils.length && gaps.length < 50000; j++) gaps.push(Math.abs(utils[i] - utils[j]));
  return temperatureForGaps(gaps, consistency);
}

/** The temperature T at which the mean of σ(gap/T) over the given utility gaps equals `consistency`. */
export function temperatureForGaps(gaps: number[], consistency: number): number {
  if (!(consistency > 0.5 && consistency < 1)) throw new Error(`consistency ${consistency} must be strictly between 0.5 and 1 for a Bradley-Terry rater`);
  const agree = (t: number) => gaps.reduce((s, g) => s + 1 / (1 + Math.exp(-g / t)), 0) / gaps.length;
  let lo = 1e-6, hi = 1e6;
  for (let k = 0; k < 100; k++) { const mid = Math.sqrt(lo * hi); if (agree(mid) > consistency) lo = mid; else hi = mid; }
  return Math.sqrt(lo * hi);
}

/** A rater with a known utility, a consistency level, a tie rate and optional position bias. */
export class SimulatedRater {
  private rng: () => number;
  readonly utility: (img: ImageRGB, prompt?: string) => number;
  readonly temperature: number;
  constructor(readonly opts: SimulatedRaterOptions) {
    this.rng = mulberry32(opts.seed ?? 1);
    this.utility = opts.utility ?? shapeTasteUtility;
    const bt = (opts.noise ?? 'bradley-terry') === 'bradley-terry';
    if (bt && opts.temperature === undefined && !opts.typicalUtilities) throw new Error('a Bradley-Terry simulated rater needs typicalUtilities or temperature to turn consistency into a noise level');
    this.temperature = bt ? opts.temperature ?? temperatureForConsistency(opts.typicalUtilities!, opts.consistency) : 0;
  }
  /** Answer for a shown pair (of one prompt, when given). */
  rate(left: ImageRGB, right: ImageRGB, prompt?: string): Choice {
    return this.rateUtilities(this.utility(left, prompt), this.utility(right, prompt));
  }
  /** Answer given the two utilities directly (saves recomputing them in simulations). */
  rateUtilities(uLeft: number, uRight: number): Choice {
    const { consistency, tieRate = 0, leftBias = 0 } = this.opts;
    if (this.rng() < tieRate) return 'tie';
    if (this.rng() < leftBias) return 'left';
    if (this.temperature > 0) return this.rng() < 1 / (1 + Math.exp(-(uLeft - uRight) / this.temperature)) ? 'left' : 'right';
    const leftBetter = uLeft === uRight ? this.rng() < 0.5 : uLeft > uRight;
    return (this.rng() < consistency) === leftBetter ? 'left' : 'right';
  }
}
