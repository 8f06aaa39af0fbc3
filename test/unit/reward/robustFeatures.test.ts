import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foregroundStats } from '../../../src/core/reward/features';
import type { PairExample } from '../../../src/core/reward/head';
import { renderShape } from '../../../src/core/reward/sim';
import { fitHead } from '../../../src/core/reward/trainer';
import { mulberry32 } from '../../../src/core/random';
import type { ImageRGB } from '../../../src/core/image/rgb';

const square = (cx: number, cy: number, radius: number) => renderShape({ shape: 'square', cx, cy, radius, color: [250, 250, 250], background: [20, 20, 120] });

test('v2 foreground: a big shape touching the border is measured as big, as v1 could not', () => {
  const img = square(0.3, 0.5, 0.3); // covers the left border from top to bottom
  const v2 = foregroundStats(img, 2).area, v1 = foregroundStats(img, 1).area;
  assert.ok(Math.abs(v2 - 0.6 * 0.6) < 0.05, `v2 area ${v2.toFixed(3)} should be about 0.36`);
  assert.ok(Math.abs(v1 - 0.36) > 0.1, `v1 area ${v1.toFixed(3)}: the border mean, dragged towards the shape, misjudges it`);
});

test('v2 foreground: scattered specks are not a shape; a small shape with specks measures as the small shape', () => {
  const img: ImageRGB = square(0.5, 0.5, 0.1);
  const rng = mulberry32(4);
  for (let k = 0; k < 120; k++) {
    const p = Math.floor(rng() * 32 * 32);
    const x = p % 32, y = Math.floor(p / 32);
    if (x > 0 && y > 0 && x < 31 && y < 31 && (x + y) % 2 === 0) img.data.set([250, 250, 250], p * 3);
  }
  const clean = foregroundStats(square(0.5, 0.5, 0.1), 2);
  const v2 = foregroundStats(img, 2), v1 = foregroundStats(img, 1);
  assert.ok(v2.area < clean.area * 1.5, `v2 area ${v2.area.toFixed(3)} vs clean ${clean.area.toFixed(3)}`);
  assert.ok(v1.area > clean.area * 2 && v1.spread > 2 * v2.spread, `v1 counts the specks: area ${v1.area.toFixed(3)}, spread ${v1.spread.toFixed(3)}`);
});

test('l1 keeps the feature that explains the ratings and shrinks the merely correlated and the irrelevant ones', async () => {
  // y follows feature 0; feature 1 is feature 0 plus noise, feature 2 is noise: an L2-only fit gives both some weight.
  const rng = mulberry32(7);
  const x = () => { const a = rng() * 2 - 1; return Float32Array.from([a, a + (rng() * 2 - 1), rng() * 2 - 1]); };
  const make = (n: number): PairExample[] => Array.from({ length: n }, () => {
    const l = x(), r = x();
    return { left: l, right: r, y: rng() < 1 / (1 + Math.exp(-4 * (l[0] - r[0]))) ? 1 : 0 };
  });
  const train = make(300), val = make(60);
  const plain = (await fitHead(train, val, { seed: 1 })).head as unknown as { w: Float32Array };
  const sparse = (await fitHead(train, val, { seed: 1, l1: 0.3 })).head as unknown as { w: Float32Array };
  assert.ok(Math.abs(plain.w[1]) > 0.05, `without l1 the correlated feature gets weight ${plain.w[1]}`);
  const share = (w: Float32Array) => (Math.abs(w[1]) + Math.abs(w[2])) / (Math.abs(w[0]) + Math.abs(w[1]) + Math.abs(w[2]));
  assert.ok(share(sparse.w) < share(plain.w) / 2, `l1 should shrink the other features' share of the weight: ${share(plain.w).toFixed(3)} -> ${share(sparse.w).toFixed(3)}`);
  assert.ok(Math.abs(sparse.w[2]) < 0.01, `the pure-noise feature should be (nearly) zeroed, got ${sparse.w[2]}`);
  assert.ok(sparse.w[0] > 1, `with l1 the explaining feature keeps its weight, got ${sparse.w[0]}`);
});
