/** Serializable state of a {@link GaussianRng}, so a run can resume mid-stream. */
export interface GaussianRngState {
  /** xoshiro128** state words (uint32). */
  s: [number, number, number, number];
  /** Second Box–Muller value not yet handed out. */
  spare: number | null;
}

// splitmix32 expands one seed into well-mixed state words.
function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Seeded standard-normal generator (xoshiro128** + Box–Muller); same seed, same numbers on every platform. */
export class GaussianRng {
  private s: Uint32Array;
  private spare: number | null = null;

  /** Seeds from a non-negative integer up to 2^53 (both 32-bit halves are used). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`Seed must be a non-negative integer, got ${seed}`);
    const hi = Math.floor(seed / 2 ** 32);
    const mixLo = splitmix32(seed >>> 0);
    const mixHi = splitmix32(hi ^ 0x5bd1e995);
    this.s = new Uint32Array([mixLo() ^ mixHi(), mixLo(), mixLo() ^ mixHi(), mixLo()]);
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  /** Rebuilds a generator from {@link state}. */
  static fromState(state: GaussianRngState): GaussianRng {
    const g = new GaussianRng(0);
    g.s = Uint32Array.from(state.s);
    g.spare = state.spare;
    return g;
  }

  /** A copy of the current state (JSON-safe). */
  state(): GaussianRngState {
    return { s: [this.s[0], this.s[1], this.s[2], this.s[3]], spare: this.spare };
  }

  /** Next uint32 (xoshiro128**). */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform double in (0, 1], 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo + 1) / 9007199254740992;
  }

  /** One standard normal sample. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fills `out` (or a new array of `n`) with standard normals. */
  fill(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
