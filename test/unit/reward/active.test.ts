import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulateSession } from '../../../src/core/reward/simulate';

test('active selection reaches the random-selection accuracy at 300 ratings with fewer ratings', async () => {
  const budget = 300, seeds = [1, 2, 3];
  const rater = { consistency: 0.9, tieRate: 0.1 };
  const run = (mode: 'active' | 'random') => Promise.all(seeds.map((seed) => simulateSession(mode, budget, { rater, seed })));
  const mean = (runs: Awaited<ReturnType<typeof run>>) => runs[0].curve.map((p, k) => ({ pairs: p.pairs, accuracy: runs.reduce((s, r) => s + r.curve[k].accuracy, 0) / runs.length }));
  const random = mean(await run('random')), active = mean(await run('active'));
  const target = random.at(-1)!.accuracy;
  const reached = active.find((p) => p.accuracy >= target);
  console.log(`random@${budget} ${target.toFixed(3)}; active reaches it at ${reached?.pairs} ratings; active@${budget} ${active.at(-1)!.accuracy.toFixed(3)}`);
  assert.ok(reached && reached.pairs < budget, 'active selection should need fewer ratings');
  assert.ok(active.at(-1)!.accuracy >= target - 0.005);
});
