// The dashboard and the experiment panel walk the person through the loop: at each stage (nothing rated, enough rated, reward trained,
// fine-tuned, compared, rated again) it shows where they are and the right next step, and its button runs that
// step's command on the experiment, through the dashboard's validated message union.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { commands, created, installFakeVscode, Uri, workspace, type FakeWebviewPanel } from './fakeVscode';
import { ExperimentStore } from '../../../src/core/experiment/store';
import { CKPT_FILES } from '../../../src/core/ddpo/checkpoint';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { statsBackbone } from '../../../src/core/reward/backbone';
import { trainExperimentReward } from '../../../src/core/reward/experiment';
import { PreferenceStore } from '../../../src/core/reward/store';
import { COMPARE_DIR, MANIFEST_FILE } from '../../../src/core/studio/compare';
import { nextStep, RATINGS_TO_TRAIN } from '../../../src/core/studio/nextStep';
import { parsePanelMessage, type DashboardView, type ExperimentView, type TrainingAlgorithm } from '../../../src/protocol';
import type { Services } from '../../../src/extension/services';
import { makeSimulatedExperiment } from '../reward/helpers/simulatedExperiment';

installFakeVscode();
const loadDashboard = () => import('../../../src/extension/panels/dashboardPanel');

function fakeServices(output: string[], running: (dir: string, algorithm: TrainingAlgorithm) => boolean): Services {
  const state = new Map<string, unknown>();
  return {
    context: { extensionUri: Uri.file(path.resolve(__dirname, '../../..')), workspaceState: { get: (k: string) => state.get(k), update: (k: string, v: unknown) => Promise.resolve(void state.set(k, v)) } },
    output: { appendLine: (l: string) => output.push(l) },
    runs: { onDidChange: () => ({ dispose: () => undefined }), stop: () => undefined, isRunning: running, progressOf: () => undefined, algorithmOf: () => undefined },
  } as unknown as Services;
}

const settle = () => new Promise((r) => setTimeout(r, 20));

/** The view the dashboard posts after `ready`. */
async function viewOf(panel: FakeWebviewPanel): Promise<DashboardView> {
  panel.webview.posted.length = 0;
  panel.webview.send({ type: 'ready' });
  await settle();
  const msg = panel.webview.posted.find((m) => (m as { type: string }).type === 'dashboard') as { view: DashboardView };
  return msg.view;
}

/** The folder of a new experiment in a fresh workspace. */
async function newExperimentDir(): Promise<string> {
  const store = new ExperimentStore(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-walkthrough-')));
  await store.create('shapes', { baseModel: { id: 'x', path: '/nowhere' }, prompts: ['a shape'] });
  return store.dirOf('shapes');
}

// A finished fine-tuning run of one epoch with its checkpoint, as the trainer leaves it on disk.
function finishRun(dir: string, algorithm: TrainingAlgorithm = 'ddpo'): void {
  const l = ddpoLayout(dir, algorithm);
  fs.mkdirSync(path.join(l.checkpointsDir, 'epoch-000000'), { recursive: true });
  fs.writeFileSync(path.join(l.checkpointsDir, 'epoch-000000', CKPT_FILES.state), '{}');
  fs.writeFileSync(l.metricsFile, JSON.stringify(algorithm === 'ddpo' ? { epoch: 0, reward_mean: 0.5, reward_std: 0.1, approx_kl: 0, clipfrac: 0 } : { algorithm: 'diffusion-dpo', epoch: 0, loss: 0.6, implicit_acc: 0.6 }) + '\n');
  fs.writeFileSync(l.statusFile, JSON.stringify({ state: 'done' }));
}

// A blind comparison of epoch 0 of a run with every pair rated (the tuned image wins both).
function compareRated(dir: string, algorithm: TrainingAlgorithm = 'ddpo'): void {
  const id = `${algorithm}-epoch-000000-20261206T120000`;
  const cdir = path.join(dir, COMPARE_DIR, id);
  fs.mkdirSync(cdir, { recursive: true });
  const items = [0, 1].map((k) => ({ pairId: `p${k}`, prompt: 'a shape', seed: k, base: `b${k}.png`, tuned: `t${k}.png` }));
  fs.writeFileSync(path.join(cdir, MANIFEST_FILE), JSON.stringify({ id, a: { kind: 'base' }, b: { kind: 'checkpoint', algorithm, epoch: 0 }, createdAt: new Date().toISOString(), items: items.map((it) => ({ pairId: it.pairId, prompt: it.prompt, seed: it.seed, a: it.base, b: it.tuned })) }));
  const store = PreferenceStore.open(cdir);
  for (const it of items) store.append({ pairId: it.pairId, prompt: it.prompt, left: it.tuned, right: it.base, choice: 'left', rater: 'me', sideOrder: 'ab' });
  store.close();
}

test('the dashboard shows where the person is and the next step at each stage, and its button runs that step\'s command', async () => {
  const { openDashboardPanel } = await loadDashboard();
  const dir = await newExperimentDir();
  const output: string[] = [];
  let running = false;
  openDashboardPanel(fakeServices(output, () => running), dir, () => undefined);
  const panel = created.at(-1)!;
  const stages: [string, () => Promise<void> | void, string | undefined][] = [
    ['nothing rated', () => undefined, 'rate'],
    ['enough rated', () => void makeSimulatedExperiment(dir, { pairs: RATINGS_TO_TRAIN + 4, seed: 3 }), 'trainReward'],
    ['reward trained', async () => void (await trainExperimentReward(dir, { backbone: statsBackbone })), 'startFineTune'],
    ['fine-tuning', () => void (running = true), undefined],
    ['fine-tuned', () => { running = false; finishRun(dir); }, 'compare'],
    ['compared', () => compareRated(dir), 'rate'],
    ['rated again', () => void makeSimulatedExperiment(dir, { pairs: 12, seed: 4 }), 'trainReward'],
  ];
  const labels: Record<string, string> = { rate: 'Rate', trainReward: 'Train Reward Model', startFineTune: 'Start Fine-Tuning', compare: 'Compare' };
  for (const [stage, act, want] of stages) {
    await act();
    const { loop } = await viewOf(panel);
    assert.equal(loop.next.step, want, `${stage}: ${JSON.stringify(loop)}`);
    assert.equal(loop.next.label, want && labels[want], stage);
    assert.ok(loop.next.why.length > 0, stage);
    if (stage === 'enough rated') assert.equal(loop.rated, RATINGS_TO_TRAIN + 4);
    if (stage === 'reward trained') assert.ok(loop.rewardAccuracy !== undefined && loop.rewardAccuracy >= 0 && loop.rewardAccuracy <= 1, JSON.stringify(loop));
    if (stage === 'fine-tuned') assert.deepEqual([loop.epochsDone, loop.winRate], [1, undefined]);
    if (stage === 'compared') assert.equal(loop.winRate, 1);
    if (!want) continue;
    // the button's message is one the dashboard's union accepts, and it runs the step's command on this experiment
    const msg = { type: 'runStep', step: want };
    assert.deepEqual(parsePanelMessage('dashboard', msg), msg);
    commands.executed.length = 0;
    panel.webview.send(msg);
    const arg = want === 'startFineTune' || want === 'compare' ? { experiment: 'shapes', algorithm: 'ddpo' } : dir;
    assert.deepEqual(commands.executed, [{ id: `ddpoStudio.${want}`, args: [arg] }], stage);
  }
  commands.executed.length = 0;
  for (const bad of [{ type: 'runStep' }, { type: 'runStep', step: 7 }, { type: 'runStep', step: 'deleteExperiment' }]) panel.webview.send(bad);
  assert.deepEqual(commands.executed, [], 'a step that is missing, not a string or not a step of the loop runs nothing');
  assert.equal(output.filter((l) => l.startsWith('[host] rejected a dashboard message')).length, 3, output.join('\n'));
  panel.dispose();
});

// A Diffusion-DPO run learns from the rated pairs themselves: its dashboard never asks for a reward model, and its
// buttons fine-tune and compare that run, not the DDPO one.
test('on a Diffusion-DPO run the walkthrough skips the reward model, and its buttons start and compare the Diffusion-DPO run', async () => {
  const { openDashboardPanel } = await loadDashboard();
  const dir = await newExperimentDir();
  let running = false;
  openDashboardPanel(fakeServices([], (_d: string, a: TrainingAlgorithm) => running && a === 'diffusion-dpo'), dir, () => undefined, undefined, 'diffusion-dpo');
  const panel = created.at(-1)!;
  const dpo = ddpoLayout(dir, 'diffusion-dpo');
  const stages: [string, () => void, string | undefined, RegExp][] = [
    ['nothing rated', () => undefined, 'rate', /Diffusion-DPO has enough/],
    ['enough rated', () => void makeSimulatedExperiment(dir, { pairs: RATINGS_TO_TRAIN + 4, seed: 3 }), 'startFineTune', /no reward model/],
    ['fine-tuning', () => void (running = true), undefined, /Diffusion-DPO is running/],
    ['fine-tuned', () => { running = false; finishRun(dir, 'diffusion-dpo'); }, 'compare', /Diffusion-DPO epoch 1/],
    ['a DDPO comparison does not count', () => compareRated(dir), 'compare', /Diffusion-DPO epoch 1/],
    ['compared', () => compareRated(dir, 'diffusion-dpo'), 'rate', /fine-tune again/],
  ];
  for (const [stage, act, want, why] of stages) {
    act();
    const { loop } = await viewOf(panel);
    assert.equal(loop.next.step, want, `${stage}: ${JSON.stringify(loop)}`);
    assert.match(loop.next.why, why, stage);
    if (stage === 'fine-tuned') assert.equal(loop.epochsDone, 1);
    if (!want) continue;
    commands.executed.length = 0;
    panel.webview.send({ type: 'runStep', step: want });
    assert.deepEqual(commands.executed, [{ id: `ddpoStudio.${want}`, args: [want === 'rate' ? dir : { experiment: 'shapes', algorithm: 'diffusion-dpo' }] }], stage);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'reward')), 'no reward model was asked for');
  assert.ok(fs.existsSync(dpo.metricsFile));
  panel.dispose();
});

// Clicking an experiment opens its panel, not the dashboard: the same walkthrough is there, for the run the dashboard
// would show (here ddpo.json's Diffusion-DPO, as nothing has run yet), with the backbone the reward model trains on.
test('the experiment panel shows the walkthrough of the run ddpo.json names and the reward backbone, and its button runs the step', async () => {
  const { openExperimentPanel, refreshExperimentPanel } = await import('../../../src/extension/panels/experimentPanel');
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-walkthrough-'));
  const store = new ExperimentStore(ws);
  await store.create('shapes', { baseModel: { id: 'x', path: '/nowhere' }, prompts: ['a shape'], rewardBackbone: { id: 'my-clip', path: '/clip' }, rewardPrior: 'clip_score' });
  const dir = store.dirOf('shapes');
  fs.writeFileSync(ddpoLayout(dir).configFile, JSON.stringify({ algorithm: 'diffusion-dpo' }));
  workspace.workspaceFolders = [{ uri: Uri.file(ws) }];
  const output: string[] = [];
  await openExperimentPanel(fakeServices(output, () => false), 'shapes');
  const panel = created.at(-1)!;
  const latest = () => (panel.webview.posted.filter((m) => (m as { type: string }).type === 'experiment').at(-1) as { experiment: ExperimentView } | undefined)?.experiment;
  panel.webview.send({ type: 'ready' });
  await settle();
  assert.deepEqual([latest()!.algorithm, latest()!.rewardBackbone, latest()!.rewardPrior, latest()!.loop.next.step], ['diffusion-dpo', 'my-clip (/clip)', 'clip_score', 'rate']);
  assert.match(latest()!.loop.next.why, /Diffusion-DPO has enough/);
  // ratings arrive on disk; the studio's watch redraws the panel
  makeSimulatedExperiment(dir, { pairs: RATINGS_TO_TRAIN + 4, seed: 3 });
  refreshExperimentPanel('shapes');
  await settle();
  assert.deepEqual([latest()!.loop.rated, latest()!.loop.next.step, latest()!.loop.next.label], [RATINGS_TO_TRAIN + 4, 'startFineTune', 'Start Fine-Tuning']);
  const msg = { type: 'runStep', step: 'startFineTune' };
  assert.deepEqual(parsePanelMessage('experiment', msg), msg);
  commands.executed.length = 0;
  panel.webview.send(msg);
  panel.webview.send({ type: 'runStep', step: 'deleteExperiment' });
  assert.deepEqual(commands.executed, [{ id: 'ddpoStudio.startFineTune', args: [{ experiment: 'shapes', algorithm: 'diffusion-dpo' }] }]);
  assert.deepEqual(output, ['[host] rejected an experiment panel message: unknown step "deleteExperiment"']);
  panel.dispose();
});

test('the dashboard reads ddpo.json\'s reward: on a built-in one it offers Start Fine-Tuning before any rating', async () => {
  const { openDashboardPanel } = await loadDashboard();
  const dir = await newExperimentDir();
  fs.writeFileSync(ddpoLayout(dir).configFile, JSON.stringify({ reward: 'aesthetic' }));
  openDashboardPanel(fakeServices([], () => false), dir, () => undefined);
  const panel = created.at(-1)!;
  const { loop } = await viewOf(panel);
  assert.deepEqual([loop.rated, loop.next.step, loop.next.label], [0, 'startFineTune', 'Start Fine-Tuning']);
  panel.dispose();
});

test('without a reward model, a few ratings short of enough still ask for ratings; fine-tuning that stopped early asks to compare its checkpoint', () => {
  const run = { state: 'idle' as const, lastEpoch: -1, numEpochs: 4, points: [], checkpoints: [], evalImages: [] };
  const base = { ratings: RATINGS_TO_TRAIN - 1, consistency: null, run, comparisons: [] };
  assert.equal(nextStep(base).step, 'rate');
  assert.match(nextStep(base).why, /Rate 1 more pair \(19 of 20\)/);
  const reward = { accuracy: 0.8, heldOut: 5, comparisons: 30, trainedAt: '', ratings: 30 };
  assert.equal(nextStep({ ...base, ratings: 5, reward: { ...reward, ratings: 5 } }).step, 'startFineTune', 'a trained model needs no more ratings to fine-tune');
  assert.equal(nextStep({ ...base, ratings: 30, reward, run: { ...run, state: 'stopped', checkpoints: [1] } }).step, 'compare');
});

test('fine-tuning on a built-in reward (ddpo.json\'s "reward": "aesthetic") needs no ratings: the loop starts at Start Fine-Tuning', () => {
  const run = { state: 'idle' as const, lastEpoch: -1, numEpochs: 4, points: [], checkpoints: [], evalImages: [] };
  const base = { ratings: 0, consistency: null, run, comparisons: [] };
  assert.equal(nextStep(base, { reward: 'aesthetic' }).step, 'startFineTune');
  assert.match(nextStep(base, { reward: 'aesthetic' }).why, /built-in reward aesthetic/);
  assert.equal(nextStep(base, { reward: 'learned' }).step, 'rate');
  assert.equal(nextStep(base).step, 'rate', 'no ddpo.json yet: the studio\'s preset fine-tunes on the learned reward');
  const done = { ...run, state: 'done' as const, checkpoints: [3] };
  assert.equal(nextStep({ ...base, run: done }, { reward: 'clip_score' }).step, 'compare');
  const compared = [{ id: 'c', a: { kind: 'base' }, b: { kind: 'checkpoint', algorithm: 'ddpo', epoch: 3 }, label: 'DDPO epoch 4 vs base model', total: 2, rated: 2, wins: 2, losses: 0, ties: 0, skips: 0, winRate: { rate: 1, low: 0.3, high: 1, n: 2 } }];
  assert.match(nextStep({ ...base, run: done, comparisons: compared as never }, { reward: 'clip_score' }).why, /"reward": "learned"/);
});

// A run stopped (or failed) before its first checkpoint has nothing to compare: the next step starts it again rather
// than a Compare button for an epoch that does not exist.
test('a run that ended before its first checkpoint asks to fine-tune, not to compare', () => {
  const reward = { accuracy: 0.8, heldOut: 5, comparisons: 30, trainedAt: '', ratings: 30 };
  for (const state of ['stopped', 'failed', 'interrupted'] as const) {
    const run = { state, lastEpoch: -1, numEpochs: 4, points: [], checkpoints: [], evalImages: [] };
    assert.equal(nextStep({ ratings: 30, consistency: null, reward, run, comparisons: [] }).step, 'startFineTune', state);
  }
});

// "Compared" means the newest checkpoint was compared and every pair of that comparison answered: a comparison of an
// older epoch, or one still being rated, leaves Compare as the next step.
test('the loop moves on from Compare only once the newest checkpoint\'s comparison is rated through', () => {
  const reward = { accuracy: 0.8, heldOut: 5, comparisons: 30, trainedAt: '', ratings: 30 };
  const run = { state: 'done' as const, lastEpoch: 3, numEpochs: 4, points: [], checkpoints: [1, 3], evalImages: [] };
  const comparison = (epoch: number, rated: number) => ({ id: `c${epoch}-${rated}`, a: { kind: 'base' as const }, b: { kind: 'checkpoint' as const, algorithm: 'ddpo' as const, epoch }, label: `DDPO epoch ${epoch + 1} vs base model`, total: 2, rated, wins: rated, losses: 0, ties: 0, skips: 0, winRate: { rate: 1, low: 0.3, high: 1, n: rated } });
  const at = (...comparisons: ReturnType<typeof comparison>[]) => nextStep({ ratings: 30, consistency: null, reward, run, comparisons });
  assert.deepEqual([at(comparison(1, 2)).step, at(comparison(1, 2)).why], ['compare', 'Compare epoch 4 with the base model, blind, to see whether fine-tuning learned your taste.'], 'epoch 2 compared, epoch 4 not');
  assert.equal(at(comparison(1, 2), comparison(3, 1)).step, 'compare', 'epoch 4 half rated');
  assert.equal(at(comparison(1, 2), comparison(3, 2)).step, 'rate', 'epoch 4 rated through');
});
