/** Dynamic loss scaling for float16 training: halve on overflow, grow after a run of finite steps (as AMP does). */

/** Settings of {@link LossScaler}. */
export interface LossScalerOptions {
  /** Finite steps in a row before the scale doubles (default 200). */
  growthInterval?: number;
  /** The scale never exceeds this (default 65536). */
  max?: number;
}

/** Holds the current loss scale; call {@link LossScaler.observe} once per step with whether its gradients were finite. */
export class LossScaler {
  private good = 0;
  private readonly growthInterval: number;
  private readonly max: number;

  constructor(public scale = 1024, opts: LossScalerOptions = {}) {
    if (!(scale >= 1)) throw new Error(`loss scale must be at least 1, got ${scale}`);
    this.growthInterval = opts.growthInterval ?? 200;
    this.max = opts.max ?? 65536;
  }

  /** Records one step: an overflow halves the scale (not below 1); enough finite steps in a row double it. */
  observe(finite: boolean): void {
    if (!finite) {
      this.scale = Math.max(1, this.scale / 2);
      this.good = 0;
    } else if (++this.good >= this.growthInterval) {
      this.scale = Math.min(this.max, this.scale * 2);
      this.good = 0;
    }
  }
}
