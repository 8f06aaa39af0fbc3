// Locates the shared reference fixtures and builds feeds for them.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** `<repo>/../shared/fixtures`. */
export const fixturesDir = resolve(__dirname, '../../../../shared/fixtures');

/** `skip` option for tests that need the fixtures: false when present, else the reason. */
export const needsFixtures: string | false = existsSync(fixturesDir) ? false : `fixtures not found at ${fixturesDir} (a fresh clone has none; CI does)`;

/** A fixture model path, e.g. `fixture('reference-sd/unet/model.onnx')`. */
export const fixture = (rel: string): string => resolve(fixturesDir, rel);

/** Deterministic pseudo-random floats in [-1, 1). */
export function randomFloats(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    out[i] = ((s >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}
