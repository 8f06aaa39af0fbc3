import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { requireTmpfs, runOnTmpfs } from './tmpfs';

const SCENARIOS = path.join(__dirname, 'diskFullScenarios.ts');
const DISK_FULL = /the disk is full \(ENOSPC\).*Free some disk space/;

type RewardRun = { pages: number; code: number; err: string; unchanged: boolean; cardNamesHead: boolean; rewardFiles: string[]; temps: string[] };
type GenerateRun = { pages: number; code: number; err: string; files: string[]; earlierUnchanged: boolean; allDecode: boolean; temps: string[] };
type PairsRun = { pages: number; err: string; pairs: number; folders: string[]; temps: string[] };

test('reward training on a full disk keeps the previous model, leaves no debris and says the disk is full', (t) => {
  const run = runOnTmpfs(SCENARIOS, '2m', ['reward']);
  if (!requireTmpfs(run, (why) => t.skip(why))) return;
  const runs = run.result as RewardRun[];
  for (const r of runs) {
    const what = `${r.pages} pages free: ${JSON.stringify(r)}`;
    assert.deepEqual(r.temps, [], what);
    assert.ok(r.cardNamesHead, `the card names the head that loads; ${what}`);
    assert.equal(r.rewardFiles.length, 2, `one card and one head, nothing else; ${what}`);
    if (r.code !== 0) {
      assert.match(r.err, /the disk is full; the previous model there is kept\. Free some disk space/, what);
      assert.ok(r.unchanged, `the previous card and head are untouched; ${what}`);
    } else assert.ok(!r.unchanged, `a run that succeeds writes a new model; ${what}`);
  }
  assert.deepEqual(runs.map((r) => r.code !== 0), [true, true, true, false, false], 'no room for the run lock, then none for the head, then none for the card, then room for all');
});

test('ddpo generate on a full disk keeps every image made so far, complete, and leaves no temp file', (t) => {
  const run = runOnTmpfs(SCENARIOS, '2m', ['generate']);
  if (!requireTmpfs(run, (why) => t.skip(why))) return;
  const [none, one] = run.result as GenerateRun[];
  for (const r of [none, one]) {
    assert.equal(r.code, 1, JSON.stringify(r));
    assert.match(r.err, DISK_FULL);
    assert.ok(r.earlierUnchanged && r.allDecode, JSON.stringify(r));
    assert.deepEqual(r.temps, []);
  }
  assert.deepEqual(none.files, ['0.png', '1.png']);
  assert.deepEqual(one.files, ['0.png', '1.png', '2.png'], 'the image that fitted is kept, the next one is not half-written');
});

test('pair generation on a full disk leaves only complete pairs: no lone image, no temp file', (t) => {
  const run = runOnTmpfs(SCENARIOS, '2m', ['pairs']);
  if (!requireTmpfs(run, (why) => t.skip(why))) return;
  for (const r of run.result as PairsRun[]) {
    assert.match(r.err, DISK_FULL, JSON.stringify(r));
    assert.equal(r.pairs, 2);
    // a complete pair keeps the latents its images were decoded from (Diffusion-DPO trains on them)
    assert.deepEqual(r.folders, ['a.png,b.png,latents.safetensors,pair.json', 'a.png,b.png,latents.safetensors,pair.json'], `${r.pages} pages free`);
    assert.deepEqual(r.temps, []);
  }
});

test('a rating refused on a full disk takes back what it wrote: every earlier rating and the next one read back whole', (t) => {
  const run = runOnTmpfs(SCENARIOS, '2m', ['ratings']);
  if (!requireTmpfs(run, (why) => t.skip(why))) return;
  const r = run.result as { err: string; pairIds: string[]; problems: string[] };
  assert.match(r.err, /Could not append to .*ratings\.jsonl: the disk is full \(ENOSPC\); every line it held before is kept\. Free some disk space/);
  assert.deepEqual(r.pairIds, ['p0', 'p1', 'p3']);
  assert.deepEqual(r.problems, []);
});
