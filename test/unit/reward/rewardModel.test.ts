import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LinearHead } from '../../../src/core/reward/head';
import { loadRewardModel, rewardModelFiles, rewardPaths, saveRewardModel, type RewardCard } from '../../../src/core/reward/model';
import { f32, writeSafetensors } from '../../../src/core/safetensors';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-reward-model-'));

function head(w: number): LinearHead {
  return new LinearHead(new Float32Array([0, 0]), new Float32Array([1, 1]), new Float32Array([w, -w]));
}

function card(trainedAt: string): RewardCard {
  return {
    format: 'ddpo-reward-card', version: 1, trainedAt, backbone: 'builtin:stats-v2',
    head: { kind: 'linear', inputDim: 2, bestEpoch: 0 },
    data: { ratings: 0, comparisons: 0, ties: 0, skips: 0, trainComparisons: 0, heldOutComparisons: 0 },
    heldOut: {} as RewardCard['heldOut'], learningCurve: [], rater: {} as RewardCard['rater'], summary: '',
  };
}

const files = (dir: string) => fs.readdirSync(rewardPaths(dir).dir).sort();

test('a new reward model goes to a head file of its own; the card names it and the replaced head is removed', () => {
  const dir = tmp();
  const first = saveRewardModel(dir, head(1), card('2026-01-01T00:00:00.000Z'));
  assert.match(first.head.file!, /^head-20260101T000000000Z-[0-9a-f]{6}\.safetensors$/);
  assert.deepEqual(files(dir), ['card.json', first.head.file].sort());
  assert.equal(loadRewardModel(dir).head.score(new Float32Array([1, 0])), 1);

  const second = saveRewardModel(dir, head(2), card('2026-01-02T00:00:00.000Z'));
  assert.notEqual(second.head.file, first.head.file);
  assert.deepEqual(files(dir), ['card.json', second.head.file].sort());
  assert.equal(JSON.parse(fs.readFileSync(rewardPaths(dir).card, 'utf8')).head.file, second.head.file);
  const loaded = loadRewardModel(dir);
  assert.equal(loaded.file, path.join(rewardPaths(dir).dir, second.head.file!));
  assert.equal(loaded.head.score(new Float32Array([1, 0])), 2);
});

test('a head a kill left without its card is never loaded, and is removed by the next save', () => {
  const dir = tmp();
  const saved = saveRewardModel(dir, head(1), card('2026-01-01T00:00:00.000Z'));
  // what a kill between writing the head and committing the card leaves
  writeSafetensors(path.join(rewardPaths(dir).dir, 'head-20260109T000000000Z-abcdef.safetensors'), { 'norm.mean': f32([2], new Float32Array(2)) });
  assert.equal(loadRewardModel(dir).head.score(new Float32Array([1, 0])), 1, 'the card still names the previous head');
  assert.equal(path.basename(loadRewardModel(dir).file), saved.head.file);
  const next = saveRewardModel(dir, head(3), card('2026-01-03T00:00:00.000Z'));
  assert.deepEqual(files(dir), ['card.json', next.head.file].sort());
});

test('a model saved before cards named their head (reward/head.safetensors) still loads, and is replaced cleanly', () => {
  const dir = tmp();
  const saved = saveRewardModel(dir, head(5), card('2026-01-01T00:00:00.000Z'));
  const p = rewardPaths(dir);
  fs.renameSync(path.join(p.dir, saved.head.file!), path.join(p.dir, 'head.safetensors'));
  const legacy = { ...saved, head: { ...saved.head, file: undefined } };
  fs.writeFileSync(p.card, JSON.stringify(legacy));
  assert.equal(loadRewardModel(dir).head.score(new Float32Array([1, 0])), 5);
  fs.rmSync(p.card);
  assert.equal(loadRewardModel(dir).head.score(new Float32Array([1, 0])), 5, 'a head without any card is the legacy layout too');
  const next = saveRewardModel(dir, head(6), card('2026-01-02T00:00:00.000Z'));
  assert.deepEqual(files(dir), ['card.json', next.head.file].sort());
});

test('the head file a card names is resolved inside reward/: a ../ path or a symlink out is refused', () => {
  const dir = tmp();
  const saved = saveRewardModel(dir, head(1), card('2026-01-01T00:00:00.000Z'));
  const p = rewardPaths(dir);
  const outside = tmp();
  fs.copyFileSync(path.join(p.dir, saved.head.file!), path.join(outside, 'evil.safetensors'));
  fs.writeFileSync(p.card, JSON.stringify({ ...saved, head: { ...saved.head, file: `../../${path.basename(outside)}/evil.safetensors` } }));
  assert.throws(() => loadRewardModel(dir), /not allowed inside .*reward.*goes above/);
  fs.symlinkSync(path.join(outside, 'evil.safetensors'), path.join(p.dir, 'link.safetensors'));
  fs.writeFileSync(p.card, JSON.stringify({ ...saved, head: { ...saved.head, file: 'link.safetensors' } }));
  assert.throws(() => loadRewardModel(dir), /symlink leads outside/);
});

test('no reward model, or an unreadable card, says what to run', () => {
  const dir = tmp();
  assert.throws(() => loadRewardModel(dir), /no reward model at .*head\.safetensors: run `ddpo reward train` first/);
  fs.mkdirSync(rewardPaths(dir).dir);
  fs.writeFileSync(rewardPaths(dir).card, '{"format": "ddpo-reward-card", "hea');
  assert.throws(() => rewardModelFiles(dir), /card\.json is unreadable .*train the reward model again/);
});
