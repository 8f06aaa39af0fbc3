import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningCurve } from '../../../src/core/reward/simulate';

test('with a 90%-consistent rater and 300 rated pairs, held-out accuracy is within 5 points of the rater ceiling', async () => {
  const counts = [25, 50, 100, 200, 300];
  const runs = await Promise.all([1, 2, 3].map((seed) => learningCurve(counts, { seed, rater: { consistency: 0.9, tieRate: 0.1 } })));
  const mean = (f: (r: (typeof runs)[number]) => number) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
  const ceiling = mean((r) => r.ceiling);
  const curve = counts.map((_, k) => mean((r) => r.points[k].accuracy));
  console.log(`ceiling ${ceiling.toFixed(3)}; learning curve ${counts.map((c, k) => `${c}:${curve[k].toFixed(3)}`).join(' ')}`);
  assert.ok(Math.abs(ceiling - 0.9) < 0.02, `the simulated rater's measured ceiling ${ceiling} should be its consistency 0.9`);
  assert.ok(curve[4] >= ceiling - 0.05, `accuracy at 300 pairs ${curve[4]} vs ceiling ${ceiling}`);
  assert.ok(curve[4] > curve[0] + 0.05, 'more ratings help');
  assert.ok(mean((r) => r.points[4].logLoss) < mean((r) => r.points[0].logLoss));
});
