import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeBlind, type EvalImages } from '../../../src/core/demo/blindEval';
import { SimulatedRater } from '../../../src/core/reward/sim';
import type { ImageRGB } from '../../../src/core/image/rgb';

const solid = (v: number): ImageRGB => ({ width: 2, height: 2, data: new Uint8Array(12).fill(v) });
const brightness = (img: ImageRGB) => img.data.reduce((s, v) => s + v, 0) / img.data.length;

test('the blind judge sees the tuned image on either side, about as often, and each answer is scored for the side it was shown on', () => {
  const prompts = ['p0', 'p1', 'p2', 'p3'];
  const seeds = 10;
  // every tuned image is brighter than its base image, and the rater prefers brighter without fail
  const base: EvalImages = prompts.map((_, p) => Array.from({ length: seeds }, (_, k) => solid(10 + p + k)));
  const tuned: EvalImages = prompts.map((_, p) => Array.from({ length: seeds }, (_, k) => solid(200 + p + k)));
  const rater = new SimulatedRater({ consistency: 1, noise: 'uniform', utility: brightness });
  const tunedImages = new Set(tuned.flat());
  const seenLeft: ('tuned' | 'base')[] = [];
  const rate = rater.rate.bind(rater);
  rater.rate = (left, right) => {
    assert.notEqual(tunedImages.has(left), tunedImages.has(right), 'each comparison shows one tuned and one base image');
    seenLeft.push(tunedImages.has(left) ? 'tuned' : 'base');
    return rate(left, right);
  };

  const r = judgeBlind(rater, prompts, 500, base, tuned, 7);
  const n = prompts.length * seeds;
  assert.equal(seenLeft.length, n);
  assert.deepEqual(r.judgements.map((j) => (j.tunedSide === 'left' ? 'tuned' : 'base')), seenLeft, 'tunedSide records the side the rater saw the tuned image on');
  const left = seenLeft.filter((s) => s === 'tuned').length;
  assert.ok(left >= n / 2 - 8 && left <= n / 2 + 8, `tuned image shown left ${left} of ${n} times`);
  assert.deepEqual([r.wins, r.losses, r.ties, r.skips], [n, 0, 0, 0], 'a rater who always prefers the tuned image gives it every win');
  assert.equal(r.winRate.rate, 1);
  assert.ok(r.meanUtilityTuned > r.meanUtilityBase);
});
