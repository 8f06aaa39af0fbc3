import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUILTIN_BACKBONE_ID, DEFAULT_CLIP_BACKBONE_ID, newExperiment, parseExperiment, serializeExperiment } from '../../../src/core/experiment/schema';
import { ExperimentStore } from '../../../src/core/experiment/store';
import { EMBEDDED_MODEL_ID } from '../../../src/core/experiment/modelDir';
import { describeBackboneRef, rewardBackboneOf } from '../../../src/core/reward/backboneRef';
import { openExperimentBackbone, trainExperimentReward } from '../../../src/core/reward/experiment';
import { statsBackbone } from '../../../src/core/reward/backbone';
import { openBackbone } from '../../../src/core/reward/openBackbone';
import { buildStudioTree } from '../../../src/core/studio/treeModel';
import { readSummary, type ExperimentSummary } from '../../../src/core/studio/summary';
import { experimentsNewCommand } from '../../../src/cli/experiments';
import { rewardTrainCommand } from '../../../src/cli/reward';
import type { CliIO } from '../../../src/cli/command';
import { runCommand } from '../cli/runCommand';
import { makeSimulatedExperiment } from './helpers/simulatedExperiment';
import { writeTestClipFolder } from './helpers/clipFolder';
import type { RewardCard } from '../../../src/core/reward/model';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-exp-backbone-'));
const io = (): CliIO & { lines: string[] } => {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push('ERR ' + l), progress: () => {}, signal: new AbortController().signal };
};

test('experiment.json keeps its reward backbone; older files without one get the default for their model', () => {
  const exp = newExperiment('cats', { baseModel: { id: 'sd15', path: '/m' }, rewardBackbone: { id: 'my-clip', path: '/clip' } });
  assert.deepEqual(parseExperiment(serializeExperiment(exp), 'f').rewardBackbone, { id: 'my-clip', path: '/clip' });
  const old = (baseModel: string) => parseExperiment(JSON.stringify({ schemaVersion: 1, name: 'n', createdAt: 't', baseModel: { id: baseModel }, prompts: [] }), 'f');
  assert.equal(old('sd').rewardBackbone, undefined);
  assert.deepEqual(rewardBackboneOf(old(EMBEDDED_MODEL_ID)), { id: BUILTIN_BACKBONE_ID });
  assert.deepEqual(rewardBackboneOf(old('stable-diffusion-v1-5')), { id: DEFAULT_CLIP_BACKBONE_ID });
  assert.throws(() => parseExperiment(JSON.stringify({ ...JSON.parse(serializeExperiment(exp)), rewardBackbone: { path: '/x' } }), 'f.json'),
    /f\.json: "rewardBackbone" must be an object with a non-empty string "id"/);
});

test('a real model\'s experiment without its backbone on this machine is an error naming the repo, never the shape features', async () => {
  const ws = tmp();
  await new ExperimentStore(ws).create('real', { baseModel: { id: 'stable-diffusion-v1-5', path: '/models/sd15' }, prompts: ['a cat'] });
  const dir = path.join(ws, '.ddpo', 'real');
  makeSimulatedExperiment(dir, { pairs: 30, seed: 2 });
  const cache = tmp();
  await assert.rejects(trainExperimentReward(dir, { open: { cacheDir: cache, offline: true } }),
    new RegExp(`The reward backbone ${DEFAULT_CLIP_BACKBONE_ID} is not downloaded .*offline.*"rewardBackbone".*in ${dir.replace(/[/\\]/g, '.')}.experiment\\.json`));
  assert.equal(fs.existsSync(path.join(dir, 'reward', 'card.json')), false, 'nothing was trained');
  // the embedded model's experiments, and bare folders of ratings, train on the built-in features as before
  const embedded = path.join(ws, '.ddpo', 'tiny');
  await new ExperimentStore(ws).create('tiny', { baseModel: { id: EMBEDDED_MODEL_ID }, prompts: ['a shape'] });
  assert.equal(await openExperimentBackbone(embedded), statsBackbone);
  assert.equal(await openExperimentBackbone(tmp()), statsBackbone);
  await assert.rejects(openBackbone({ id: 'embedded:no-such-clip' }), /cannot find the embedded reward backbone media\/no-such-clip above .*; reinstall DDPO Studio, or choose another reward backbone/);
});

test('the tree names the backbone the reward model trains on, and the one it was trained on', () => {
  const entry = (rewardBackbone?: { id: string; path?: string }) => ({ status: 'ok' as const, name: 'cats', dir: '/w/.ddpo/cats', experiment: newExperiment('cats', { baseModel: { id: 'sd15', path: '/m' }, rewardBackbone }) });
  const summary = (reward?: ExperimentSummary['reward']): ExperimentSummary => ({ ratings: 3, consistency: null, reward, run: { state: 'idle', lastEpoch: -1, numEpochs: 1, points: [], checkpoints: [], evalImages: [] }, comparisons: [] });
  const rewardRow = (e: ReturnType<typeof entry>, s: ExperimentSummary) => buildStudioTree([e], () => s)[0].children.find((c) => c.kind === 'reward')!;
  assert.equal(rewardRow(entry(), summary()).description, `not trained · ${DEFAULT_CLIP_BACKBONE_ID}`);
  const local = rewardRow(entry({ id: 'my-clip', path: '/clip' }), summary());
  assert.equal(local.description, 'not trained · my-clip');
  assert.equal(local.tooltip, 'Trains on my-clip (/clip)');
  const onClip = (backboneRef: { id: string; path?: string }) => summary({ accuracy: 0.8, heldOut: 10, comparisons: 50, trainedAt: '', backbone: 'my-clip (image + text)', backboneRef });
  const trained = rewardRow(entry({ id: BUILTIN_BACKBONE_ID }), onClip({ id: 'my-clip', path: '/clip' }));
  assert.equal(trained.description, 'accuracy 80% on 10 held-out · my-clip (image + text)');
  assert.equal(trained.tooltip, 'Trained on my-clip (image + text)\nThe next training uses built-in shape features');
  // trained on the backbone the experiment still names: nothing changes at the next training
  assert.equal(rewardRow(entry({ id: 'my-clip', path: '/clip' }), onClip({ id: 'my-clip', path: '/clip' })).tooltip, 'Trained on my-clip (image + text)');
  assert.equal(rewardRow(entry({ id: 'my-clip', path: '../../../clip' }), onClip({ id: 'my-clip', path: '/clip' })).tooltip, 'Trained on my-clip (image + text)', 'a path relative to the experiment');
  assert.equal(rewardRow(entry({ id: 'my-clip', path: '/other-clip' }), onClip({ id: 'my-clip', path: '/clip' })).tooltip, 'Trained on my-clip (image + text)\nThe next training uses my-clip (/other-clip)');
  assert.equal(rewardRow(entry(), onClip({ id: DEFAULT_CLIP_BACKBONE_ID, path: '/cache/models--x' })).tooltip, 'Trained on my-clip (image + text)', 'a Hub backbone opened from the cache');
  assert.equal(rewardRow(entry({ id: BUILTIN_BACKBONE_ID }), onClip({ id: statsBackbone.id })).tooltip, 'Trained on my-clip (image + text)');
  assert.equal(describeBackboneRef({ id: 'builtin:stats-v2' }), 'built-in shape features');
});

test('ddpo experiments new --reward-backbone and ddpo reward train --backbone take a folder; the card names it', async () => {
  const ws = tmp();
  const clip = writeTestClipFolder(path.join(ws, 'clip'));
  const o = io();
  assert.equal(await runCommand(experimentsNewCommand, ['e', '--workspace', ws, '--base-model', 'sd15', '--reward-backbone', clip], o), 0, o.lines.join('\n'));
  const dir = path.join(ws, '.ddpo', 'e');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'experiment.json'), 'utf8')).rewardBackbone, { id: 'clip', path: clip });
  assert.equal(await runCommand(experimentsNewCommand, ['b', '--workspace', ws, '--reward-backbone', 'builtin'], o), 0);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(ws, '.ddpo', 'b', 'experiment.json'), 'utf8')).rewardBackbone, { id: BUILTIN_BACKBONE_ID });
  makeSimulatedExperiment(dir, { pairs: 40, seed: 4, prompts: ['a big red circle on a blue background', 'a small yellow square on the left on a black background'] });
  const t = io();
  assert.equal(await runCommand(rewardTrainCommand, ['--experiment', dir], t), 0, t.lines.join('\n'));
  assert.match(t.lines.join('\n'), /with clip \(image \+ text\), reading each image's prompt/);
  const card = JSON.parse(fs.readFileSync(path.join(dir, 'reward', 'card.json'), 'utf8')) as RewardCard;
  assert.deepEqual(card.backboneSource, { id: 'clip', path: clip });
  const entries = await new ExperimentStore(ws).list();
  const row = buildStudioTree(entries, (x) => readSummary(x.dir, false)).find((n) => n.experiment === 'e')!.children.find((c) => c.kind === 'reward')!;
  assert.match(row.tooltip!, /^Trained on clip \(image \+ text\)\nHeld-out accuracy by comparisons trained on: (\d+ → \d+%, )+\d+ → \d+%$/, 'the tree reads where the card was trained from, and how accuracy grew');
  const b = io();
  assert.equal(await runCommand(rewardTrainCommand, ['--experiment', dir, '--backbone', 'builtin'], b), 0, b.lines.join('\n'));
  assert.match(b.lines.join('\n'), /with built-in shape features\n/);
});

test('a reward training cancelled part-way leaves the saved model as it was', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cancel-'));
  makeSimulatedExperiment(dir, { pairs: 60, seed: 6 });
  await trainExperimentReward(dir, { backbone: statsBackbone });
  const before = fs.readFileSync(path.join(dir, 'reward', 'card.json'), 'utf8');
  const ctl = new AbortController();
  const lines: string[] = [];
  await assert.rejects(trainExperimentReward(dir, { backbone: statsBackbone, signal: ctl.signal, seed: 1, onProgress: (l) => { lines.push(l); if (l.startsWith('learning curve')) ctl.abort(); } }), { name: 'AbortError' });
  assert.ok(lines.some((l) => l.startsWith('learning curve')), lines.join('\n'));
  assert.equal(fs.readFileSync(path.join(dir, 'reward', 'card.json'), 'utf8'), before, 'the card (and the head it names) are the earlier training\'s');
});
