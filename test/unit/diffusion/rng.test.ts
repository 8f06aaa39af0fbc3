import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GaussianRng } from '../../../src/core/diffusion/rng';

const draw = (g: GaussianRng, n: number) => g.fill(new Float32Array(n));

test('the same seed gives the same normals, a different seed different ones', () => {
  assert.deepEqual(draw(new GaussianRng(42), 1000), draw(new GaussianRng(42), 1000));
  assert.notDeepEqual(draw(new GaussianRng(42), 1000), draw(new GaussianRng(43), 1000));
  assert.notDeepEqual(draw(new GaussianRng(1), 100), draw(new GaussianRng(1 + 2 ** 32), 100));
});

test('a generator restored from its serialized state continues the same stream', () => {
  const g = new GaussianRng(7);
  draw(g, 333); // odd count leaves a Box-Muller spare in the state
  const saved = JSON.parse(JSON.stringify(g.state()));
  const rest = draw(g, 500);
  assert.deepEqual(draw(GaussianRng.fromState(saved), 500), rest);
});

test('samples look standard normal (mean 0, variance 1, symmetric tails)', () => {
  const x = draw(new GaussianRng(123), 200000);
  let s = 0, s2 = 0, beyond2 = 0;
  for (const v of x) { s += v; s2 += v * v; if (Math.abs(v) > 2) beyond2++; }
  const mean = s / x.length, variance = s2 / x.length - mean * mean;
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.01, `variance ${variance}`);
  assert.ok(Math.abs(beyond2 / x.length - 0.0455) < 0.003, `P(|x|>2) ${beyond2 / x.length}`);
});

test('bad seeds are rejected', () => {
  assert.throws(() => new GaussianRng(-1), /non-negative integer/);
  assert.throws(() => new GaussianRng(1.5), /non-negative integer/);
});
