/**
 * A personal head warm-started from a built-in prior: score(x) = α·prior(x) + correction(x). α is fitted first, by
 * Bradley–Terry on the training comparisons alone (how many log-odds one unit of the prior is worth to this rater,
 * never below 0), and then held fixed; the correction is an ordinary head that starts at zero and learns from the
 * ratings what the prior gets wrong. With few ratings the score is the prior's ranking; with many the correction can
 * outweigh it.
 */
import { sigmoid, type HeadParams, type PairExample, type RewardHead } from './head';
import type { FeatureLayout } from './headInput';
import { priorOfHeadInput, type RewardPrior } from './priors';

/** A head whose score is its prior's (scaled) plus a trained correction; training sees only the correction's parameters. */
export class WarmHead implements RewardHead {
  constructor(readonly prior: RewardPrior, readonly layout: FeatureLayout, readonly scale: number, readonly correction: RewardHead) {}
  get kind(): RewardHead['kind'] { return this.correction.kind; }
  get inputDim(): number { return this.correction.inputDim; }
  get mean(): Float32Array { return this.correction.mean; }
  get std(): Float32Array { return this.correction.std; }
  offset(x: Float32Array): number { return this.scale * priorOfHeadInput(this.prior, this.layout, x); }
  score(x: Float32Array): number { return this.offset(x) + this.correction.score(x); }
  backward(x: Float32Array, scale: number, grads: HeadParams): void { this.correction.backward(x, scale, grads); }
  params(): HeadParams { return this.correction.params(); }
}

/**
 * The α of {@link WarmHead}: the maximum of the Bradley–Terry likelihood of the comparisons under score α·prior,
 * with ties as half-wins, by Newton's method on the concave 1-D problem. A small ridge keeps it finite when the
 * prior orders every comparison right; a prior that orders them wrong gets 0 (the warm start is then a cold one).
 */
export function fitPriorScale(prior: (x: Float32Array) => number, xs: PairExample[]): number {
  const d = xs.map((e) => prior(e.left) - prior(e.right));
  const spread = Math.sqrt(d.reduce((s, v) => s + v * v, 0) / Math.max(1, d.length));
  if (!(spread > 0)) return 0;
  const ridge = 0.1 / (spread * spread); // a tenth of a comparison's pull towards 0, in the prior's own units: finite when it orders all
  let a = 0;
  for (let it = 0; it < 50; it++) {
    let g = -ridge * a, h = -ridge;
    xs.forEach((e, i) => {
      const p = sigmoid(a * d[i]);
      g += (e.y - p) * d[i];
      h -= p * (1 - p) * d[i] * d[i];
    });
    const next = Math.max(0, a - g / h);
    if (Math.abs(next - a) < 1e-9 * (1 + Math.abs(a))) return next;
    a = next;
  }
  return a;
}

/** The `wrap` option of a fit that starts from `prior`, scaled to the training comparisons `train`. */
export function warmStartFrom(prior: RewardPrior, layout: FeatureLayout, train: PairExample[]): (head: RewardHead) => WarmHead {
  const scale = fitPriorScale((x) => priorOfHeadInput(prior, layout, x), train);
  return (head) => new WarmHead(prior, layout, scale, head);
}

/** The prior alone as a head (α = 1, no correction), for measuring how well it knows the rater before any rating. */
export function priorOnlyHead(prior: RewardPrior, layout: FeatureLayout, inputDim: number): RewardHead {
  const none: RewardHead = {
    kind: 'linear', inputDim, mean: new Float32Array(inputDim), std: new Float32Array(inputDim).fill(1),
    score: () => 0, backward: () => undefined, params: () => new Map(),
  };
  return new WarmHead(prior, layout, 1, none);
}
