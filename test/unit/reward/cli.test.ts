import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeSimulatedExperiment } from './helpers/simulatedExperiment';
import { rewardEvalCommand, rewardTrainCommand } from '../../../src/cli/reward';
import { exportPreferencesCommand } from '../../../src/cli/exportPreferences';
import { readRatings } from '../../../src/core/reward/store';
import type { CliIO } from '../../../src/cli/command';
import { runCommand } from '../cli/runCommand';
import type { RewardCard } from '../../../src/core/reward/model';
import type { PickAPicRow } from '../../../src/core/reward/export';

function io(): CliIO & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push('ERR ' + l), progress: () => {}, signal: new AbortController().signal };
}

test('reward train / eval / export-preferences on a simulated experiment', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-exp-'));
  makeSimulatedExperiment(dir, { pairs: 160, seed: 3 });
  const log = readRatings(dir);
  assert.equal(log.ratings.length, 160);
  assert.ok(log.ratings.some((r) => r.repeatOf), 'the schedule includes side-swapped repeats');

  const t = io();
  assert.equal(await runCommand(rewardTrainCommand, ['--experiment', dir], t), 0, t.lines.join('\n'));
  const card = JSON.parse(fs.readFileSync(path.join(dir, 'reward', 'card.json'), 'utf8')) as RewardCard;
  assert.match(card.head.file ?? '', /^head-[\w-]+\.safetensors$/);
  assert.ok(fs.existsSync(path.join(dir, 'reward', card.head.file!)), 'the card names the head written beside it');
  assert.equal(card.data.ratings, 160);
  assert.ok(card.heldOut.accuracy > 0.7, `held-out accuracy ${card.heldOut.accuracy}`);
  assert.ok(card.rater.repeats > 0 && card.learningCurve.length >= 2);
  assert.match(card.summary, /predicts your choice/);

  const e = io();
  assert.equal(await runCommand(rewardEvalCommand, ['--experiment', dir], e), 0, e.lines.join('\n'));
  assert.ok(e.lines.some((l) => l.startsWith('held-out:')) && e.lines.some((l) => l.startsWith('rater:')));

  const out = path.join(dir, 'export');
  const x = io();
  assert.equal(await runCommand(exportPreferencesCommand, ['--experiment', dir, '--out', out], x), 0);
  const rows = fs.readFileSync(path.join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as PickAPicRow);
  assert.equal(rows.length, log.ratings.filter((r) => r.choice !== 'skip').length);
  for (const r of rows) {
    assert.equal(r.label_0 + r.label_1, 1);
    for (const img of [r.jpg_0, r.jpg_1]) assert.deepEqual([...fs.readFileSync(path.join(out, img)).subarray(0, 2)], [0xff, 0xd8]);
  }
  // A repeat shows the pair with sides swapped, but the exported image 0 / image 1 stay the same.
  const rep = log.ratings.find((r) => r.repeatOf && r.choice !== 'skip' && log.ratings.find((o) => o.id === r.repeatOf)?.choice !== 'skip')!;
  const pairRows = rows.filter((r) => r.ranking_id === rep.pairId);
  assert.equal(pairRows.length, 2);
  assert.equal(pairRows[0].jpg_0, pairRows[1].jpg_0);

  // the dataset is not replaced unasked, and never by a mistyped folder's nothing
  const again = io();
  assert.equal(await runCommand(exportPreferencesCommand, ['--experiment', dir, '--out', out], again), 1);
  assert.match(again.lines.join('\n'), /train\.jsonl exists; pass --force to replace it/);
  const typo = io();
  assert.equal(await runCommand(exportPreferencesCommand, ['--experiment', dir + '-typo', '--out', out, '--force'], typo), 1);
  assert.match(typo.lines.join('\n'), /has no ratings\.jsonl: give an experiment folder with ratings/);
  assert.equal(fs.readFileSync(path.join(out, 'train.jsonl'), 'utf8').trim().split('\n').length, rows.length, 'the dataset is as it was');
  // an image gone from the experiment leaves its ratings out, counted, not the whole export
  fs.rmSync(path.join(dir, log.ratings[0].left));
  const gone = io();
  assert.equal(await runCommand(exportPreferencesCommand, ['--experiment', dir, '--out', out, '--force'], gone), 0, gone.lines.join('\n'));
  assert.match(gone.lines.join('\n'), /ERR \d+ ratings? left out: an image could not be read \(first: /);
  assert.ok(fs.readFileSync(path.join(out, 'train.jsonl'), 'utf8').trim().split('\n').length < rows.length);
});

test('reward train explains what to do when there are too few ratings', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-exp-'));
  const t = io();
  assert.equal(await runCommand(rewardTrainCommand, ['--experiment', dir], t), 1);
  assert.match(t.lines.join('\n'), /rate at least 10 pairs/);
});

test('reward train with many unusable lines shows the first few and counts the rest', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-exp-'));
  makeSimulatedExperiment(dir, { pairs: 40, seed: 5 });
  const good = fs.readFileSync(path.join(dir, 'ratings.jsonl'), 'utf8');
  fs.writeFileSync(path.join(dir, 'ratings.jsonl'), good + 'not json\n'.repeat(300));
  const t = io();
  assert.equal(await runCommand(rewardTrainCommand, ['--experiment', dir], t), 0, t.lines.join('\n'));
  const warnings = t.lines.filter((l) => l.startsWith('ERR '));
  const first = good.split('\n').length;
  assert.deepEqual(warnings, [
    ...[0, 1, 2, 3, 4].map((k) => `ERR ratings.jsonl line ${first + k}: not valid JSON; skipped`),
    `ERR ... and 295 more unusable lines of ratings.jsonl skipped (300 in all, the last at line ${first + 299})`,
  ]);
});

test('reward train skips a rating whose image is missing or not a PNG, naming its line, and summarises after the first few', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-exp-'));
  makeSimulatedExperiment(dir, { pairs: 60, seed: 5 });
  const log = readRatings(dir);
  const rated = log.ratings.filter((r) => r.choice !== 'skip');
  const notPng = rated[10].right;
  const missing = [...new Set([rated[3].left, rated[20].left, rated[30].right, rated[40].left])].filter((f) => f !== notPng);
  for (const f of missing) fs.rmSync(path.join(dir, f));
  fs.writeFileSync(path.join(dir, notPng), 'not a png');
  const hit = rated.filter((r) => [r.left, r.right].some((f) => missing.includes(f) || f === notPng));
  assert.ok(hit.length > 5, `${hit.length} ratings lose an image`);
  const t = io();
  assert.equal(await runCommand(rewardTrainCommand, ['--experiment', dir], t), 0, t.lines.join('\n'));
  const warnings = t.lines.filter((l) => l.startsWith('ERR '));
  const lines = hit.map((r) => log.lineOf.get(r)!);
  assert.equal(warnings.length, 6, warnings.join('\n'));
  warnings.slice(0, 5).forEach((w, k) => assert.match(w, new RegExp(`^ERR ratings\\.jsonl line ${lines[k]}: (image .* is missing|could not read image .*: .*); skipped$`)));
  assert.match(warnings[5], new RegExp(`^ERR \\.\\.\\. and ${hit.length - 5} more unusable lines .* the last at line ${lines.at(-1)}\\)$`));
  const card = JSON.parse(fs.readFileSync(path.join(dir, 'reward', 'card.json'), 'utf8')) as RewardCard;
  assert.equal(card.data.unreadable, hit.length);
  assert.equal(card.data.comparisons, rated.length - hit.length);
});
