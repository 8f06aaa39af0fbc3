// What the rating panel is told after each rating, from the ratings it was just given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { studioRater, summarizeRatings } from '../../../src/core/studio/ratingLog';
import type { Rating } from '../../../src/core/reward/types';

const ratingBy = (rater: string, i: number): Rating => ({
  kind: 'rating', id: `${rater}-${i}`, pairId: `pair-${i}`, prompt: 'p', left: `samples/pair-${i}/a.png`, right: `samples/pair-${i}/b.png`, choice: 'left', time: 't', rater, sideOrder: 'ab',
});

test('repeats come only from the ratings of the person at the panel, not from another rater in the same log', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-rating-log-'));
  const me = studioRater(), other = `${me}-simulated`;
  const theirs = Array.from({ length: 10 }, (_, i) => ratingBy(other, i));
  const view = summarizeRatings(dir, undefined, theirs);
  assert.equal(view.rated, 10);
  assert.deepEqual(view.dueRepeats, [], 'ten ratings by someone else bring no repeat to this person');
  const mine = Array.from({ length: 5 }, (_, i) => ratingBy(me, 10 + i));
  const due = summarizeRatings(dir, undefined, [...theirs, ...mine]).dueRepeats;
  assert.equal(due.length, 1, 'five of my own ratings bring one repeat');
  assert.ok(mine.some((r) => r.id === due[0].repeatOf), 'and it repeats one of mine');
});
