import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { blindImageName, compareDir, compareQueue, compareResult, listComparisons, saveManifest, type CompareManifest } from '../../../src/core/studio/compare';
import { PreferenceStore } from '../../../src/core/reward/store';
import type { Choice } from '../../../src/protocol';

function setup(): { dir: string; m: CompareManifest } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-studio-compare-'));
  const items = Array.from({ length: 6 }, (_, k) => ({ pairId: `cmp-${k}`, prompt: `p${k % 2}`, seed: k, a: blindImageName(), b: blindImageName() }));
  return { dir, m: { id: 'epoch-000001-20260101T000000', a: { kind: 'base' }, b: { kind: 'checkpoint', algorithm: 'ddpo', epoch: 1 }, createdAt: new Date().toISOString(), items } };
}

test('blind image names say nothing about which model drew them', () => {
  const names = new Set(Array.from({ length: 50 }, blindImageName));
  assert.equal(names.size, 50);
  for (const n of names) assert.match(n, /^images\/[0-9a-f]{16}\.png$/);
});

test('a comparison is listed only once its manifest is written, and its id cannot escape the folder', async () => {
  const { dir, m } = setup();
  fs.mkdirSync(path.join(dir, 'compare', 'half-written'), { recursive: true });
  assert.deepEqual(listComparisons(dir), []);
  await saveManifest(dir, m);
  assert.deepEqual(listComparisons(dir).map((x) => x.id), [m.id]);
  // an id arrives in a rate or undo request: anything but one plain name would put ratings.jsonl somewhere else
  for (const id of ['../../etc', `${m.id}/../../../etc`, `${m.id}/images`, '..', '.', '', 'a\\..\\..']) {
    assert.throws(() => compareDir(dir, id), /not a comparison id/, JSON.stringify(id));
  }
  assert.equal(compareDir(dir, m.id), path.join(dir, 'compare', m.id));
});

test('the queue shows each base/tuned pair once, with the tuned image on both sides across pairs', async () => {
  const { dir, m } = setup();
  await saveManifest(dir, m);
  const q = compareQueue(dir, m);
  assert.equal(q.length, 6);
  for (const item of q) {
    const it = m.items.find((x) => x.pairId === item.pairId)!;
    assert.deepEqual(new Set([item.left, item.right]), new Set([it.a, it.b]));
    // 'ab': the manifest's first image (A) is the one shown left, as ratings.jsonl records it
    assert.equal(item.sideOrder, item.left === it.a ? 'ab' : 'ba');
  }
  const tunedLeft = q.filter((item) => m.items.find((x) => x.pairId === item.pairId)!.b === item.left).length;
  assert.ok(tunedLeft > 0 && tunedLeft < 6, 'sides are shuffled');
});

test('the win rate counts the tuned image winning, ties as half, skips not at all; rated pairs leave the queue', async () => {
  const { dir, m } = setup();
  await saveManifest(dir, m);
  const q = compareQueue(dir, m);
  const store = PreferenceStore.open(compareDir(dir, m.id));
  const pick = (i: number, tunedWins: boolean) => {
    const it = m.items.find((x) => x.pairId === q[i].pairId)!;
    const tunedIsLeft = q[i].left === it.b;
    return tunedWins === tunedIsLeft ? 'left' : 'right';
  };
  const add = (i: number, choice: Choice) => store.append({ pairId: q[i].pairId, prompt: q[i].prompt, left: q[i].left, right: q[i].right, choice, sideOrder: 'ab', rater: 't' });
  add(0, pick(0, true));
  add(1, pick(1, true));
  add(2, pick(2, false));
  add(3, 'tie');
  add(4, 'skip');
  store.close();
  const r = compareResult(dir, m);
  assert.deepEqual([r.wins, r.losses, r.ties, r.rated, r.total], [2, 1, 1, 5, 6]);
  assert.equal(r.winRate.n, 4);
  assert.equal(r.winRate.rate, 2.5 / 4);
  assert.ok(r.winRate.low < r.winRate.rate && r.winRate.high > r.winRate.rate);
  assert.deepEqual(compareQueue(dir, m).map((x) => x.pairId), [q[5].pairId]);
});
