/** Advantages from rewards: per-prompt running statistics (DDPO's PerPromptStatTracker) or one global normalisation. */

/** JSON-safe state of a {@link PerPromptStatTracker}: each prompt's recent rewards, oldest first. */
export interface StatTrackerState {
  bufferSize: number;
  minCount: number;
  buffers: Record<string, number[]>;
}

/**
 * Per prompt, a queue of its last `bufferSize` rewards. A prompt seen fewer than `minCount` times is
 * normalised with the whole batch's mean/std, otherwise with its own: A = (r - mean) / (std + 1e-6).
 */
export class PerPromptStatTracker {
  private buffers = new Map<string, number[]>();

  constructor(readonly bufferSize: number, readonly minCount: number) {}

  /** Rebuilds a tracker from {@link state}. */
  static fromState(s: StatTrackerState): PerPromptStatTracker {
    const t = new PerPromptStatTracker(s.bufferSize, s.minCount);
    for (const [p, b] of Object.entries(s.buffers)) t.buffers.set(p, [...b]);
    return t;
  }

  /** Adds this batch's rewards to the history, then returns their advantages (same order). */
  update(prompts: string[], rewards: number[]): number[] {
    if (prompts.length !== rewards.length) throw new Error(`stat tracker: ${prompts.length} prompts but ${rewards.length} rewards`);
    const all = meanStd(rewards);
    const advantages = new Array<number>(rewards.length);
    for (const prompt of [...new Set(prompts)].sort()) {
      const idx = prompts.flatMap((p, i) => (p === prompt ? [i] : []));
      const buf = this.buffers.get(prompt) ?? [];
      buf.push(...idx.map((i) => rewards[i]));
      if (buf.length > this.bufferSize) buf.splice(0, buf.length - this.bufferSize);
      this.buffers.set(prompt, buf);
      const { mean, std } = buf.length < this.minCount ? all : meanStd(buf);
      for (const i of idx) advantages[i] = (rewards[i] - mean) / (std + 1e-6);
    }
    return advantages;
  }

  /** A copy of the state, for checkpoints. */
  state(): StatTrackerState {
    return { bufferSize: this.bufferSize, minCount: this.minCount, buffers: Object.fromEntries([...this.buffers].map(([p, b]) => [p, [...b]])) };
  }
}

/** TRL's global advantages: (r - mean) / (std + 1e-8), population std. */
export function globalAdvantages(rewards: number[]): number[] {
  const { mean, std } = meanStd(rewards);
  return rewards.map((r) => (r - mean) / (std + 1e-8));
}

/** Mean and population standard deviation (numpy's defaults). */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  if (xs.length === 0) return { mean: NaN, std: NaN };
  let s = 0;
  for (const x of xs) s += x;
  const mean = s / xs.length;
  let v = 0;
  for (const x of xs) v += (x - mean) * (x - mean);
  return { mean, std: Math.sqrt(v / xs.length) };
}

/** Reward mean/std/count for each prompt, for metrics. */
export function perPromptStats(prompts: string[], rewards: number[]): Record<string, { mean: number; std: number; count: number }> {
  const out: Record<string, { mean: number; std: number; count: number }> = {};
  for (const prompt of [...new Set(prompts)].sort()) {
    const rs = rewards.filter((_, i) => prompts[i] === prompt);
    out[prompt] = { ...meanStd(rs), count: rs.length };
  }
  return out;
}
