// The 95% Wilson interval every win rate and agreement is shown with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wilson } from '../../../src/core/reward/stats';

const near = (x: number, want: number, what: string) => assert.ok(Math.abs(x - want) < 1e-4, `${what}: ${x}, expected ${want}`);

test('the interval is the 95% Wilson score interval (7 of 10: 39.7% to 89.2%)', () => {
  // the reference values of the Wilson interval without continuity correction (statsmodels' proportion_confint, method="wilson")
  const r = wilson(7, 10);
  assert.equal(r.rate, 0.7);
  near(r.low, 0.3968, 'low');
  near(r.high, 0.8922, 'high');
});

test('10 wins of 10 still leave room below: 72% to 100%, not a certainty', () => {
  const all = wilson(10, 10);
  near(all.low, 0.7225, 'low of 10/10');
  assert.equal(all.high, 1);
  const none = wilson(0, 10);
  assert.equal(none.low, 0, 'never below 0%');
  near(none.high, 0.2775, 'high of 0/10');
});
