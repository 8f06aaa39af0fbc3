/** Weight tensors for the graph builders: taken from a state dict or drawn at random, seeded per tensor name. */

/** Weights by diffusers/transformers state-dict name, in PyTorch layout (Linear `[out, in]`, Conv `[out, in, kh, kw]`). */
export type StateDict = Map<string, Float32Array>;

/** How a random tensor is drawn: PyTorch's default `U(-1/sqrt(fanIn), 1/sqrt(fanIn))`, a normal, or a constant. */
export type Init = { kind: 'uniform'; fanIn: number } | { kind: 'normal'; std: number } | { kind: 'const'; value: number };

// FNV-1a, so each tensor's stream depends only on (seed, name), not on build order.
function hashName(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0) ^ Math.floor(seed / 2 ** 32)) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h || 1;
}

/** Fills `out` with seeded values following `init` (xorshift32 seeded from (seed, name); Box–Muller for normals). */
export function fillRandom(out: Float32Array, init: Init, seed: number, name: string): Float32Array {
  if (init.kind === 'const') return out.fill(init.value);
  let x = hashName(seed, name) | 0;
  for (let i = 0; i < 8; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; }
  const n = out.length;
  if (init.kind === 'uniform') {
    const bound = 1 / Math.sqrt(init.fanIn);
    const k = (2 * bound) / 4294967296;
    for (let i = 0; i < n; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      out[i] = (x >>> 0) * k - bound;
    }
    return out;
  }
  for (let i = 0; i < n; i += 2) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const u1 = ((x >>> 0) + 1) / 4294967297;
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const r = Math.sqrt(-2 * Math.log(u1)) * init.std;
    const th = (2 * Math.PI * (x >>> 0)) / 4294967296;
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

/** Hands out weights by name: from `dict` when given (checking sizes), else random. Records every name it served. */
export class WeightSource {
  readonly served = new Set<string>();
  private readonly presets = new Map<string, Init>();
  /** Number of weight elements handed out. */
  params = 0;

  constructor(private readonly dict: StateDict | null, private readonly seed = 0, private readonly what = 'model') {}

  /** Overrides the random init of tensor `name` (for models whose init differs from the layer default). */
  preset(name: string, init: Init): void {
    this.presets.set(name, init);
  }

  /** A tensor of `numel` elements in PyTorch layout. */
  get(name: string, numel: number, init: Init): Float32Array {
    this.served.add(name);
    this.params += numel;
    if (!this.dict) return fillRandom(new Float32Array(numel), this.presets.get(name) ?? init, this.seed, name);
    const w = this.dict.get(name);
    if (!w) throw new Error(`${this.what}: the given weights have no tensor "${name}"; pass a complete state dict or use random weights`);
    if (w.length !== numel) throw new Error(`${this.what}: weight "${name}" has ${w.length} elements, the config needs ${numel}; check the config matches the weights`);
    return w;
  }

  /** A Linear weight `[out, in]` returned transposed to `[in, out]`, the layout MatMul exports use (random ones are drawn in place). */
  linearT(name: string, inF: number, outF: number, init: Init = { kind: 'uniform', fanIn: inF }): Float32Array {
    if (!this.dict) return this.get(name, inF * outF, init);
    const w = this.get(name, inF * outF, init);
    const t = new Float32Array(inF * outF);
    for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) t[i * outF + o] = w[o * inF + i];
    return t;
  }

  /** Names in `dict` that the build never asked for (a sign of a config/weights mismatch). */
  unused(): string[] {
    return this.dict ? [...this.dict.keys()].filter((k) => !this.served.has(k)) : [];
  }
}
