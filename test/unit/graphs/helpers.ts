/** Shared bits of the graph-builder tests: fixture location and a one-call ORT runner. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Model } from '../../../src/core/onnx/ir';
import { encodeModel } from '../../../src/core/onnx/proto';

/** `<repo>/../shared/fixtures/reference-sd`. */
export const referenceSd = resolve(__dirname, '../../../../shared/fixtures/reference-sd');

/** `skip` value: false when the fixtures are present, else why the test is skipped. */
export const needsFixtures: string | false = existsSync(referenceSd) ? false : `fixtures not found at ${referenceSd} (a fresh clone has none; CI does)`;

/** Runs a model once on CPU and returns its outputs by name. */
export async function runModel(model: Model, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all' });
  try { return await session.run(feeds); } finally { await session.release(); }
}

/** Max |a - b| over max |b|. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let mx = 0;
  let md = 0;
  for (let i = 0; i < b.length; i++) { mx = Math.max(mx, Math.abs(b[i])); md = Math.max(md, Math.abs(a[i] - b[i])); }
  return md / mx;
}

/** Deterministic pseudo-random floats in [-1, 1). */
export function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = (x >>> 0) / 2147483648 - 1; }
  return out;
}

export { ort };
