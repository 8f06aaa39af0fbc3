import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blindOutcome, scoreBlind, type BlindOutcome } from '../../../src/core/reward/blindScore';

test('a skip is no judgement: adding skips changes no count but their own, nor the win rate or its n', () => {
  const judged: BlindOutcome[] = ['tuned', 'tuned', 'base', 'tie'];
  const without = scoreBlind(judged);
  const withSkips = scoreBlind(['skip', ...judged, 'skip', 'skip']);
  assert.deepEqual({ ...withSkips, skips: 0 }, without);
  assert.equal(withSkips.skips, 3);
  assert.deepEqual(scoreBlind(['skip']), { wins: 0, losses: 0, ties: 0, skips: 1, winRate: scoreBlind([]).winRate });
});

test('a tie counts half a win over wins, losses and ties', () => {
  const r = scoreBlind(['tuned', 'tuned', 'base', 'tie']);
  assert.deepEqual([r.wins, r.losses, r.ties, r.winRate.n], [2, 1, 1, 4]);
  assert.equal(r.winRate.rate, 2.5 / 4);
  assert.ok(r.winRate.low < r.winRate.rate && r.winRate.rate < r.winRate.high);
  assert.equal(scoreBlind(['tie', 'tie']).winRate.rate, 0.5);
});

test('a choice is scored from the side the tuned image was shown on', () => {
  assert.equal(blindOutcome('left', 'left'), 'tuned');
  assert.equal(blindOutcome('right', 'left'), 'base');
  assert.equal(blindOutcome('right', 'right'), 'tuned');
  assert.equal(blindOutcome('tie', 'right'), 'tie');
  assert.equal(blindOutcome('skip', 'left'), 'skip');
});
