/** AdamW with PyTorch semantics over named Float32Array parameters, global-norm gradient clipping, and its state for checkpoints. */
import type { SafeTensor } from '../safetensors';

/** torch.optim.AdamW hyper-parameters (same defaults, except lr which has none). */
export interface AdamWConfig {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Parameters that take no weight decay (biases, say), like a PyTorch param group with weight_decay 0. */
  noDecay?: (name: string) => boolean;
}

/**
 * Scales all gradients in place so their global L2 norm is at most `maxNorm`, like
 * torch.nn.utils.clip_grad_norm_: coef = min(1, maxNorm / (norm + 1e-6)). Returns the norm before clipping.
 */
export function clipGradNorm(grads: Iterable<Float32Array>, maxNorm: number): number {
  const list = [...grads];
  let sq = 0;
  for (const g of list) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  const norm = Math.sqrt(sq);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef < 1) for (const g of list) for (let i = 0; i < g.length; i++) g[i] *= coef;
  return norm;
}

/** Optimizer state in memory: step count and moments named `exp_avg.<param>` / `exp_avg_sq.<param>`. */
export interface AdamWState {
  step: number;
  tensors: Map<string, SafeTensor>;
}

/** AdamW: decoupled weight decay p ← p·(1 − lr·wd), then the bias-corrected Adam update. */
export class AdamW {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly noDecay: (name: string) => boolean;
  /** Number of completed steps (PyTorch's `state['step']`). */
  step = 0;
  private m = new Map<string, Float32Array>();
  private v = new Map<string, Float32Array>();

  constructor(cfg: AdamWConfig) {
    this.lr = cfg.lr;
    this.beta1 = cfg.beta1 ?? 0.9;
    this.beta2 = cfg.beta2 ?? 0.999;
    this.eps = cfg.eps ?? 1e-8;
    this.weightDecay = cfg.weightDecay ?? 1e-2;
    this.noDecay = cfg.noDecay ?? (() => false);
  }

  /** Updates every parameter in place from its gradient (parameters without a gradient are left alone). */
  update(params: Map<string, Float32Array>, grads: Map<string, Float32Array>): void {
    this.step += 1;
    const bc1 = 1 - this.beta1 ** this.step;
    const bc2 = 1 - this.beta2 ** this.step;
    const stepSize = this.lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    const decayed = 1 - this.lr * this.weightDecay;
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      if (g.length !== p.length) throw new Error(`AdamW: gradient of ${name} has ${g.length} values, the parameter ${p.length}`);
      let m = this.m.get(name), v = this.v.get(name);
      if (!m || !v) { m = new Float32Array(p.length); v = new Float32Array(p.length); this.m.set(name, m); this.v.set(name, v); }
      const { beta1: b1, beta2: b2, eps } = this;
      const decay = this.noDecay(name) ? 1 : decayed;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        // torch: denom = sqrt(v)/sqrt(bc2) + eps; p -= (lr/bc1)·m/denom
        p[i] = p[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / sqrtBc2 + eps);
      }
    }
  }

  /** The moments (copies, as `exp_avg.<name>` / `exp_avg_sq.<name>`) and the step count, for an in-memory checkpoint. */
  state(): AdamWState {
    const tensors = new Map<string, SafeTensor>();
    for (const [k, m] of this.m) tensors.set(`exp_avg.${k}`, { dtype: 'F32', shape: [m.length], data: Float32Array.from(m) });
    for (const [k, v] of this.v) tensors.set(`exp_avg_sq.${k}`, { dtype: 'F32', shape: [v.length], data: Float32Array.from(v) });
    return { step: this.step, tensors };
  }

  /** Restores what {@link state} returned; hyper-parameters come from `cfg` (they may change on resume). `source` names it in errors. */
  static fromState(state: AdamWState, cfg: AdamWConfig, source = 'optimizer state'): AdamW {
    if (typeof state.step !== 'number' || !Number.isInteger(state.step) || state.step < 0) throw new Error(`${source}: "step" must be a non-negative integer, got ${JSON.stringify(state.step)}`);
    const opt = new AdamW(cfg);
    opt.step = state.step;
    for (const [k, t] of state.tensors) {
      if (t.dtype !== 'F32') throw new Error(`${source}: ${k} is ${t.dtype}, expected F32`);
      const data = Float32Array.from(t.data as Float32Array);
      if (k.startsWith('exp_avg_sq.')) opt.v.set(k.slice(11), data);
      else if (k.startsWith('exp_avg.')) opt.m.set(k.slice(8), data);
    }
    return opt;
  }
}
