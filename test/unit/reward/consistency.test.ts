// The rater's consistency and position bias, as the rating panel and the reward card show them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { raterConsistency } from '../../../src/core/reward/consistency';
import type { Rating } from '../../../src/core/reward/types';

/** A first showing of pair `i` (image a on the left) and, with `repeat`, its side-swapped repeat. */
function shown(i: number, first: Rating['choice'], repeat?: Rating['choice']): Rating[] {
  const a = `samples/p${i}/a.png`, b = `samples/p${i}/b.png`;
  const orig: Rating = { kind: 'rating', id: `r${i}`, pairId: `p${i}`, prompt: 'x', left: a, right: b, choice: first, time: 't', rater: 'me', sideOrder: 'ab' };
  if (repeat === undefined) return [orig];
  return [orig, { ...orig, id: `r${i}-again`, left: b, right: a, sideOrder: 'ba', choice: repeat, repeatOf: orig.id }];
}

test('a repeat with a tie on either showing says nothing about consistency and is not counted', () => {
  const c = raterConsistency([
    ...shown(0, 'left', 'right'), // the same image both times: one agreeing repeat
    ...shown(1, 'left', 'tie'),
    ...shown(2, 'tie', 'left'),
    ...shown(3, 'tie', 'tie'),
  ]);
  assert.equal(c.repeats, 1);
  assert.equal(c.agreement.rate, 1);
  assert.equal(c.estimatedConsistency, 1);
});

test('a rater who disagrees with themselves more often than not is shown as a coin flip (50%), not as no consistency', () => {
  // 3 of 10 repeats pick the same image: worse than chance, which independent mistakes cannot explain
  const ratings = Array.from({ length: 10 }, (_, i) => shown(i, 'left', i < 3 ? 'right' : 'left')).flat();
  const c = raterConsistency(ratings);
  assert.deepEqual([c.repeats, c.agreement.rate], [10, 0.3]);
  assert.equal(c.estimatedConsistency, 0.5);
});

test('position bias is the share of decisive answers on the left: ties and skips are no side', () => {
  const c = raterConsistency([...shown(0, 'left'), ...shown(1, 'right'), ...shown(2, 'tie'), ...shown(3, 'skip'), ...shown(4, 'tie')]);
  assert.deepEqual([c.leftRate.rate, c.leftRate.n], [0.5, 2]);
});
