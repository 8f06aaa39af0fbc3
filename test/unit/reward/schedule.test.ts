import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schedulePairs, pairIdFor, type SampleRef } from '../../../src/core/reward/schedule';
import { raterConsistency } from '../../../src/core/reward/consistency';
import { winRateWithCI } from '../../../src/core/reward/stats';
import type { Rating } from '../../../src/core/reward/types';

const samples: SampleRef[] = ['cat', 'dog'].flatMap((prompt) => [0, 1, 2, 3, 4, 5].flatMap((seed) => [undefined, 'step-100'].map((checkpoint) => ({ path: `samples/${prompt}/${checkpoint ?? 'base'}/${seed}.png`, prompt, seed, checkpoint }))));
const byPath = new Map(samples.map((s) => [s.path, s]));

function rating(i: number, p: { pairId: string; prompt: string; left: string; right: string; sideOrder: 'ab' | 'ba'; repeatOf?: string }, choice: Rating['choice']): Rating {
  return { kind: 'rating', id: `r${i}`, time: 't', rater: 'me', choice, ...p };
}

test('pairs share a prompt and differ in seed (or in checkpoint when comparing checkpoints)', () => {
  for (const p of schedulePairs(samples, [], { count: 30, seed: 1 })) {
    const a = byPath.get(p.left)!, b = byPath.get(p.right)!;
    assert.equal(a.prompt, b.prompt); assert.equal(a.checkpoint, b.checkpoint); assert.notEqual(a.seed, b.seed);
    assert.equal(p.pairId, pairIdFor(p.left, p.right));
  }
  for (const p of schedulePairs(samples, [], { count: 10, seed: 2, mode: 'checkpoint' })) {
    const a = byPath.get(p.left)!, b = byPath.get(p.right)!;
    assert.equal(a.prompt, b.prompt); assert.equal(a.seed, b.seed); assert.notEqual(a.checkpoint, b.checkpoint);
  }
});

test('the queue mixes uncertain pairs, random pairs and side-swapped repeats, and never re-proposes a rated pair', () => {
  const first = schedulePairs(samples, [], { count: 20, seed: 3 });
  const ratings = first.map((p, i) => rating(i, p, i % 2 ? 'left' : 'right'));
  const score = (path: string) => byPath.get(path)!.seed; // the model's current reward
  const next = schedulePairs(samples, ratings, { count: 20, seed: 4, score, activeShare: 0.5, repeatShare: 0.1 });
  const reasons = (r: string) => next.filter((p) => p.reason === r);
  assert.equal(reasons('repeat').length, 2);
  assert.equal(reasons('uncertain').length, 10);
  assert.ok(reasons('random').length >= 5);
  for (const p of reasons('uncertain')) assert.equal(Math.abs(score(p.left) - score(p.right)), 1, 'uncertain pairs are the closest-scored ones');
  const rated = new Set(first.map((p) => p.pairId));
  for (const p of next.filter((x) => x.reason !== 'repeat')) assert.ok(!rated.has(p.pairId));
  for (const p of reasons('repeat')) {
    const orig = ratings.find((r) => r.id === p.repeatOf)!;
    assert.equal(p.left, orig.right); assert.equal(p.right, orig.left); assert.notEqual(p.sideOrder, orig.sideOrder);
  }
});

test('consistency and position bias are measured from repeats and side choices', () => {
  const base = { prompt: 'x', sideOrder: 'ab' as const };
  const ratings: Rating[] = [];
  for (let i = 0; i < 10; i++) {
    const a = `s/a${i}.png`, b = `s/b${i}.png`;
    ratings.push(rating(2 * i, { ...base, pairId: `p${i}`, left: a, right: b }, 'left'));
    // Eight repeats pick the same image (now on the right), two flip.
    ratings.push(rating(2 * i + 1, { pairId: `p${i}`, prompt: 'x', left: b, right: a, sideOrder: 'ba', repeatOf: `r${2 * i}` }, i < 8 ? 'right' : 'left'));
  }
  const c = raterConsistency(ratings);
  assert.equal(c.repeats, 10);
  assert.equal(c.agreement.rate, 0.8);
  assert.ok(Math.abs(c.estimatedConsistency - (1 + Math.sqrt(0.6)) / 2) < 1e-9);
  assert.equal(c.leftRate.rate, 12 / 20);
});

test('win rate with ties as half wins and a Wilson interval', () => {
  const r = winRateWithCI(6, 2, 2);
  assert.equal(r.rate, 0.7);
  assert.ok(r.low < 0.7 && r.high > 0.7 && r.low > 0.35 && r.high < 0.95);
  assert.ok(Number.isNaN(winRateWithCI(0, 0, 0).rate));
});
