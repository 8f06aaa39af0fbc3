// Reward heads over a fixed feature vector, with analytic gradients of the Bradley–Terry loss.
// score(x) = head(standardise(x)); P(left preferred) = σ(score(left) − score(right)).

/** A labelled comparison: features of the left and right image, y = 1 left wins, 0 right wins, 0.5 tie. */
export interface PairExample {
  left: Float32Array;
  right: Float32Array;
  y: number;
}

/** Named parameter tensors of a head, in the layout they are saved with (row-major, [out, in] for weights). */
export type HeadParams = Map<string, { shape: number[]; data: Float32Array }>;

/** A differentiable scalar reward over a feature vector. */
export interface RewardHead {
  readonly kind: 'linear' | 'mlp';
  readonly inputDim: number;
  /** Per-feature mean and std used to standardise inputs (fixed during training). */
  readonly mean: Float32Array;
  readonly std: Float32Array;
  /** The reward of one feature vector. */
  score(x: Float32Array): number;
  /** The part of score(x) that training leaves alone (a warm start's prior); absent when there is none. */
  offset?(x: Float32Array): number;
  /** Accumulate d(score)/d(params) * scale into grads (same keys as params()). */
  backward(x: Float32Array, scale: number, grads: HeadParams): void;
  /** The trainable tensors (live references; trainers update them in place). */
  params(): HeadParams;
}

/** Numerically stable log(1 + e^x). */
export const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
/** Logistic function. */
export const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** Bradley–Terry loss with ties as half-wins: −[y log σ(d) + (1−y) log σ(−d)] = softplus(d) − y·d. */
export function btLoss(d: number, y: number): number {
  return softplus(d) - y * d;
}

function standardise(x: Float32Array, mean: Float32Array, std: Float32Array, out: Float32Array): Float32Array {
  if (x.length !== mean.length) throw new Error(`reward head expects ${mean.length} features, got ${x.length} (was the head trained on another backbone?)`);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] - mean[i]) / std[i];
  return out;
}

/** Linear head r = w·x̂ (a bias would cancel in every comparison, so there is none). */
export class LinearHead implements RewardHead {
  readonly kind = 'linear';
  readonly w: Float32Array;
  private xs: Float32Array;
  constructor(readonly mean: Float32Array, readonly std: Float32Array, w?: Float32Array) {
    this.w = w ?? new Float32Array(mean.length);
    this.xs = new Float32Array(mean.length);
  }
  get inputDim(): number { return this.mean.length; }
  score(x: Float32Array): number {
    const xs = standardise(x, this.mean, this.std, this.xs);
    let s = 0;
    for (let i = 0; i < xs.length; i++) s += this.w[i] * xs[i];
    return s;
  }
  backward(x: Float32Array, scale: number, grads: HeadParams): void {
    const xs = standardise(x, this.mean, this.std, this.xs);
    const g = grads.get('w')!.data;
    for (let i = 0; i < xs.length; i++) g[i] += scale * xs[i];
  }
  params(): HeadParams { return new Map([['w', { shape: [1, this.inputDim], data: this.w }]]); }
}

// GELU, tanh approximation, and its derivative.
const K = Math.sqrt(2 / Math.PI);
const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(K * (x + 0.044715 * x * x * x)));
function geluGrad(x: number): number {
  const t = Math.tanh(K * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * 0.044715 * x * x);
}

/** One-hidden-layer MLP head r = w2·gelu(W1 x̂ + b1). */
export class MlpHead implements RewardHead {
  readonly kind = 'mlp';
  private xs: Float32Array;
  private pre: Float32Array;
  constructor(readonly mean: Float32Array, readonly std: Float32Array, readonly hidden: number,
    readonly w1: Float32Array, readonly b1: Float32Array, readonly w2: Float32Array) {
    if (w1.length !== hidden * mean.length || b1.length !== hidden || w2.length !== hidden) throw new Error(`MLP head shapes do not match hidden=${hidden}, input=${mean.length}`);
    this.xs = new Float32Array(mean.length);
    this.pre = new Float32Array(hidden);
  }
  /** A fresh head with small random weights (rng in [0,1)). */
  static init(mean: Float32Array, std: Float32Array, hidden: number, rng: () => number): MlpHead {
    const d = mean.length;
    const w1 = new Float32Array(hidden * d).map(() => (rng() * 2 - 1) * Math.sqrt(3 / d));
    const w2 = new Float32Array(hidden).map(() => (rng() * 2 - 1) * Math.sqrt(3 / hidden) * 0.1);
    return new MlpHead(mean, std, hidden, w1, new Float32Array(hidden), w2);
  }
  get inputDim(): number { return this.mean.length; }
  private forward(x: Float32Array): number {
    const xs = standardise(x, this.mean, this.std, this.xs);
    const d = xs.length;
    let s = 0;
    for (let h = 0; h < this.hidden; h++) {
      let a = this.b1[h];
      for (let i = 0; i < d; i++) a += this.w1[h * d + i] * xs[i];
      this.pre[h] = a;
      s += this.w2[h] * gelu(a);
    }
    return s;
  }
  score(x: Float32Array): number { return this.forward(x); }
  backward(x: Float32Array, scale: number, grads: HeadParams): void {
    this.forward(x);
    const d = this.inputDim;
    const gw1 = grads.get('w1')!.data, gb1 = grads.get('b1')!.data, gw2 = grads.get('w2')!.data;
    for (let h = 0; h < this.hidden; h++) {
      gw2[h] += scale * gelu(this.pre[h]);
      const gp = scale * this.w2[h] * geluGrad(this.pre[h]);
      gb1[h] += gp;
      for (let i = 0; i < d; i++) gw1[h * d + i] += gp * this.xs[i];
    }
  }
  params(): HeadParams {
    return new Map([
      ['w1', { shape: [this.hidden, this.inputDim], data: this.w1 }],
      ['b1', { shape: [this.hidden], data: this.b1 }],
      ['w2', { shape: [1, this.hidden], data: this.w2 }],
    ]);
  }
}

/** Per-feature mean and std over a set of vectors (a constant feature gets std 1, so it stays inert instead of exploding). */
export function featureStats(xs: Float32Array[]): { mean: Float32Array; std: Float32Array } {
  const d = xs[0]?.length ?? 0;
  const mean = new Float32Array(d), std = new Float32Array(d);
  for (const x of xs) for (let i = 0; i < d; i++) mean[i] += x[i] / xs.length;
  for (const x of xs) for (let i = 0; i < d; i++) std[i] += (x[i] - mean[i]) ** 2 / xs.length;
  for (let i = 0; i < d; i++) std[i] = std[i] > 1e-12 ? Math.sqrt(std[i]) : 1;
  return { mean, std };
}
