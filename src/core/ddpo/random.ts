/** Integer draws (choices, permutations, seeds) from the seeded generator whose state checkpoints save. */
import { GaussianRng, GaussianRngState } from '../diffusion/rng';

/** The three independent streams of a run: prompt choice, sampling noise seeds, and training shuffles. */
export interface RunRngState {
  prompts: GaussianRngState;
  noise: GaussianRngState;
  shuffle: GaussianRngState;
}

/** Generators of one run, seeded from the config's seed. */
export class RunRngs {
  constructor(readonly prompts: GaussianRng, readonly noise: GaussianRng, readonly shuffle: GaussianRng) {}

  /** Fresh streams for `seed`. */
  static fromSeed(seed: number): RunRngs {
    // Different seeds per stream so changing e.g. the batch size does not shift the noise of other draws.
    return new RunRngs(new GaussianRng(seed * 3 + 0), new GaussianRng(seed * 3 + 1), new GaussianRng(seed * 3 + 2));
  }

  /** Rebuilds the streams from a checkpoint. */
  static fromState(s: RunRngState): RunRngs {
    return new RunRngs(GaussianRng.fromState(s.prompts), GaussianRng.fromState(s.noise), GaussianRng.fromState(s.shuffle));
  }

  /** JSON-safe copy of all three states. */
  state(): RunRngState {
    return { prompts: this.prompts.state(), noise: this.noise.state(), shuffle: this.shuffle.state() };
  }
}

/** A uniform integer in [0, n). */
export function randInt(rng: GaussianRng, n: number): number {
  // uniform() is in (0, 1], so 1 - u is in [0, 1).
  return Math.min(n - 1, Math.floor((1 - rng.uniform()) * n));
}

/** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
export function randperm(rng: GaussianRng, n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** A seed in [0, 2^48) for a batch of sampling noise (image k uses seed + k). */
export function drawSeed(rng: GaussianRng): number {
  return (rng.nextUint32() & 0xffff) * 2 ** 32 + rng.nextUint32();
}
