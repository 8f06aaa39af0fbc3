import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildQueue, listPairs, PAIR_FILE, planPairs, sidesOf, type StoredPair } from '../../../src/core/studio/pairs';
import type { Rating } from '../../../src/core/reward/types';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-studio-pairs-'));

function pair(i: number, prompt = 'a red circle'): StoredPair {
  const id = `pair-${2 * i}-x`;
  return { pairId: id, prompt, a: `samples/${id}/a.png`, b: `samples/${id}/b.png`, seeds: [2 * i, 2 * i + 1], createdAt: new Date(1e12 + i).toISOString() };
}

function rating(p: StoredPair, choice: Rating['choice'], extra: Partial<Rating> = {}): Rating {
  return { kind: 'rating', id: `r-${p.pairId}-${extra.repeatOf ?? ''}`, pairId: p.pairId, prompt: p.prompt, left: p.a, right: p.b, choice, time: '', rater: 't', sideOrder: 'ab', ...extra };
}

test('planned pairs cover the least-rated prompts first and never reuse a seed', () => {
  const plans = planPairs(['cat', 'dog'], [pair(0, 'cat'), pair(1, 'cat')], 3);
  assert.deepEqual(plans.map((p) => p.prompt), ['dog', 'dog', 'cat']);
  const seeds = plans.flatMap((p) => p.seeds);
  assert.equal(new Set(seeds).size, 6);
  assert.ok(Math.min(...seeds) > 3, 'seeds continue after the existing pairs');
  assert.ok(plans.every((p) => p.a === `samples/${p.pairId}/a.png` && p.b === `samples/${p.pairId}/b.png`));
  assert.throws(() => planPairs([], [], 1), /no prompts/);
});

test('only pairs whose pair.json was written count; a half-written folder is ignored', () => {
  const dir = tmp();
  const p = pair(0);
  fs.mkdirSync(path.join(dir, 'samples', p.pairId), { recursive: true });
  fs.writeFileSync(path.join(dir, 'samples', p.pairId, PAIR_FILE), JSON.stringify(p));
  fs.mkdirSync(path.join(dir, 'samples', 'pair-9-interrupted'));
  fs.writeFileSync(path.join(dir, 'samples', 'pair-9-interrupted', 'a.png'), '');
  assert.deepEqual(listPairs(dir).map((x) => x.pairId), [p.pairId]);
  assert.deepEqual(listPairs(path.join(dir, 'nope')), []);
});

test('the queue skips rated pairs, keeps sides stable, and brings back a side-swapped repeat every 5 ratings', () => {
  const pairs = Array.from({ length: 8 }, (_, i) => pair(i));
  assert.deepEqual(buildQueue(pairs, []).map((q) => q.pairId), pairs.map((p) => p.pairId));
  const first = buildQueue(pairs, [])[0];
  assert.equal(first.sideOrder, sidesOf(first.pairId));
  assert.equal(first.left, first.sideOrder === 'ab' ? pairs[0].a : pairs[0].b);

  const rated = pairs.slice(0, 5).map((p) => rating(p, 'left'));
  const q = buildQueue(pairs, rated);
  assert.equal(q[0].repeatOf !== undefined, true, 'a repeat is due after 5 ratings');
  const orig = rated.find((r) => r.id === q[0].repeatOf)!;
  assert.equal(q[0].left, orig.right, 'the repeat swaps the sides');
  assert.deepEqual(q.slice(1).map((x) => x.pairId), pairs.slice(5).map((p) => p.pairId));

  // Once the repeat is answered, no other repeat is due until 5 more ratings.
  const withRepeat = [...rated, rating(pairs[0], 'right', { repeatOf: q[0].repeatOf, id: 'rep' })];
  assert.ok(buildQueue(pairs, withRepeat).every((x) => x.repeatOf === undefined));
});

test('an undone (retracted) rating puts its pair back in the queue', () => {
  const pairs = [pair(0), pair(1)];
  // Effective ratings exclude retracted ones, so the pair is simply unrated again.
  assert.deepEqual(buildQueue(pairs, [rating(pairs[1], 'left')]).map((q) => q.pairId), [pairs[0].pairId]);
  assert.deepEqual(buildQueue(pairs, []).map((q) => q.pairId), [pairs[0].pairId, pairs[1].pairId]);
});

test('only a pair with a winner comes back as a repeat: a tie or a skip has no image to pick again', () => {
  const pairs = Array.from({ length: 8 }, (_, i) => pair(i));
  const undecided = pairs.slice(0, 5).map((p, i) => rating(p, i % 2 ? 'skip' : 'tie'));
  assert.ok(buildQueue(pairs, undecided).every((q) => q.repeatOf === undefined), 'no repeat after five ties and skips');
  const oneDecided = [...undecided.slice(0, 4), rating(pairs[4], 'right')];
  assert.deepEqual(buildQueue(pairs, oneDecided).filter((q) => q.repeatOf).map((q) => q.repeatOf), [oneDecided[4].id]);
});
