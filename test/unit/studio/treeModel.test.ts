import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newExperiment } from '../../../src/core/experiment/schema';
import type { ExperimentEntry } from '../../../src/core/experiment/store';
import { buildStudioTree, interruptedRuns, type StudioNode } from '../../../src/core/studio/treeModel';
import { EMBEDDED_MODEL_ID } from '../../../src/core/experiment/modelDir';
import type { ExperimentSummary } from '../../../src/core/studio/summary';

const entry: ExperimentEntry = { status: 'ok', name: 'cats', dir: '/w/.ddpo/cats', experiment: newExperiment('cats', { baseModel: { id: EMBEDDED_MODEL_ID, path: '/ext/media/tiny-model' }, prompts: ['a cat', 'a dog'] }) };

const summary: ExperimentSummary = {
  ratings: 12,
  consistency: 0.83,
  reward: { accuracy: 0.714, heldOut: 7, comparisons: 12, trainedAt: '', backbone: 'built-in shape features' },
  run: { state: 'interrupted', lastEpoch: 2, numEpochs: 8, points: [{ epoch: 2, rewardMean: 0.4567, rewardStd: 0.1, approxKl: 0, clipfrac: 0 }], checkpoints: [1, 2], evalImages: [] },
  comparisons: [{ id: 'c1', a: { kind: 'base' }, b: { kind: 'checkpoint', algorithm: 'ddpo', epoch: 2 }, label: 'DDPO epoch 3 vs base model', total: 4, rated: 4, wins: 3, losses: 1, ties: 0, skips: 1, winRate: { rate: 0.75, low: 0.3, high: 0.95, n: 4 } }],
};

const find = (nodes: StudioNode[], kind: string): StudioNode => nodes.find((n) => n.kind === kind)!;

test('an experiment row carries its run state, and its children say what the person needs at a glance', () => {
  const [exp] = buildStudioTree([entry], () => summary);
  assert.equal(exp.status, 'interrupted');
  assert.equal(exp.description, 'tiny-shapes (embedded) · interrupted');
  assert.deepEqual(exp.children.map((c) => c.kind), ['model', 'prompts', 'ratings', 'reward', 'run', 'comparisons']);
  assert.equal(find(exp.children, 'ratings').description, '12 rated · consistency 83%');
  assert.equal(find(exp.children, 'reward').description, 'accuracy 71% on 7 held-out · built-in shape features');
  const run = find(exp.children, 'run');
  assert.equal(run.description, 'interrupted · 3/8 epochs, reward 0.457');
  assert.deepEqual(run.children[0].children.map((c) => [c.label, c.epoch]), [['epoch 2', 1], ['epoch 3', 2]]);
  const cmp = find(exp.children, 'comparisons');
  assert.match(cmp.description!, /^latest: 75% \(95% CI 30%–95%, n=4\)$/);
  assert.equal(cmp.children[0].compareId, 'c1');
  assert.match(cmp.children[0].tooltip!, /1 skips not counted/);
  const all = [exp, ...exp.children, ...run.children, ...run.children[0].children, ...cmp.children];
  assert.equal(new Set(all.map((n) => n.id)).size, all.length, 'ids are unique, so expansion survives refreshes');
});

// A win rate that moves with each answer tells the rater which image is the fine-tuned one: while a comparison is
// rated, its row shows progress only, and the latest result shown is the newest comparison rated through.
test('a comparison being rated shows no win rate anywhere until every pair is answered', async () => {
  const done = summary.comparisons[0];
  const partway = { ...done, id: 'c2', rated: 2, wins: 2, losses: 0, skips: 0, winRate: { rate: 1, low: 0.34, high: 1, n: 2 } };
  const [exp] = buildStudioTree([entry], () => ({ ...summary, comparisons: [done, partway] }));
  const cmp = find(exp.children, 'comparisons');
  assert.match(cmp.description!, /^latest: 75% /, 'the newest comparison rated through, not the one being rated');
  assert.equal(cmp.children[1].description, '2/4 rated');
  assert.doesNotMatch(cmp.children[1].tooltip!, /\d+ wins|%/);
  const { loopView } = await import('../../../src/core/studio/nextStep');
  const { latestResult } = await import('../../../src/core/studio/compare');
  assert.equal(loopView({ ...summary, comparisons: [done, partway] }, summary.run, { algorithm: 'ddpo' }).winRate, 0.75);
  assert.equal(latestResult([partway]), undefined);
  // of two comparisons rated through (oldest first, as listed), the newer one is the result the person sees
  const newer = { ...done, id: 'c3', wins: 1, losses: 3, ties: 0, skips: 0, winRate: { rate: 0.25, low: 0.05, high: 0.7, n: 4 } };
  assert.equal(latestResult([done, newer])?.id, 'c3');
  assert.equal(loopView({ ...summary, comparisons: [done, newer] }, summary.run, { algorithm: 'ddpo' }).winRate, 0.25);
  assert.match(find(buildStudioTree([entry], () => ({ ...summary, comparisons: [done, newer] }))[0].children, 'comparisons').description!, /^latest: 25% /);
  assert.equal(find(buildStudioTree([entry], () => ({ ...summary, comparisons: [partway] }))[0].children, 'comparisons').description, 'being rated');
});

test('an empty experiment says what is missing; an unreadable one shows its reason', () => {
  const empty: ExperimentSummary = { ratings: 0, consistency: null, run: { state: 'idle', lastEpoch: -1, numEpochs: 100, points: [], checkpoints: [], evalImages: [] }, comparisons: [] };
  const [exp, bad] = buildStudioTree([entry, { status: 'error', name: 'x', dir: '/w/.ddpo/x', reason: 'not valid JSON' }], () => empty);
  assert.equal(find(exp.children, 'reward').description, 'not trained · built-in shape features');
  assert.equal(find(exp.children, 'run').description, 'not started');
  assert.equal(find(exp.children, 'comparisons').description, 'none yet');
  assert.equal(bad.kind, 'error');
  assert.equal(bad.description, 'not valid JSON');
});

// After a reload the studio offers Resume for every interrupted run, a Diffusion-DPO one too, and the experiment's row
// shows the interrupted run when the other is not under way.
test('an interrupted Diffusion-DPO run shows on its experiment\'s row and is offered for resuming, as an interrupted DDPO run is', () => {
  const idle = { state: 'idle' as const, lastEpoch: -1, numEpochs: 8, points: [], checkpoints: [], evalImages: [] };
  const dpoRun = { ...idle, state: 'interrupted' as const, lastEpoch: 1, checkpoints: [0, 1], algorithm: 'diffusion-dpo' as const, dpoPoints: [] };
  const [exp] = buildStudioTree([entry], () => ({ ...summary, run: idle, dpoRun }));
  assert.equal(exp.status, 'interrupted');
  assert.deepEqual(interruptedRuns([exp]), [{ experiment: 'cats', dir: entry.dir, algorithm: 'diffusion-dpo', label: 'Fine-tuning (Diffusion-DPO)' }]);
  const both = buildStudioTree([entry], () => ({ ...summary, dpoRun }));
  assert.deepEqual(interruptedRuns(both).map((r) => r.algorithm), ['ddpo', 'diffusion-dpo']);
  const running = buildStudioTree([entry], () => ({ ...summary, run: { ...idle, state: 'running' as const }, dpoRun }));
  assert.equal(running[0].status, 'running', 'a run under way is what the row shows');
  assert.deepEqual(buildStudioTree([entry], () => ({ ...summary, run: idle })).flatMap((n) => interruptedRuns([n])), []);
});

// A Diffusion-DPO run under way is what the experiment's row shows (its spinner and "running"), even when the DDPO run
// finished long ago: a row saying "done" while a run holds the experiment invites a second start.
test('an experiment whose Diffusion-DPO run is under way shows running on its row, whatever the DDPO run did', () => {
  const done = { state: 'done' as const, lastEpoch: 7, numEpochs: 8, points: [], checkpoints: [7], evalImages: [] };
  const dpoRun = { ...done, state: 'running' as const, lastEpoch: 0, checkpoints: [0], algorithm: 'diffusion-dpo' as const, dpoPoints: [] };
  const [exp] = buildStudioTree([entry], () => ({ ...summary, run: done, dpoRun }));
  assert.equal(exp.status, 'running');
  assert.equal(exp.description, 'tiny-shapes (embedded) · running');
});

// After a reload the studio offers Resume for interrupted runs only: a run that finished, failed or was stopped on
// purpose is not "interrupted", and a Resume notice for it after every reload would be noise.
test('only interrupted runs are offered for resuming, not finished, failed or stopped ones', () => {
  for (const state of ['done', 'failed', 'stopped', 'running'] as const) {
    const run = { ...summary.run, state };
    const dpoRun = { ...run, algorithm: 'diffusion-dpo' as const, dpoPoints: [] };
    assert.deepEqual(interruptedRuns(buildStudioTree([entry], () => ({ ...summary, run, dpoRun }))), [], state);
  }
});

// Hovering a failed run's row tells why it failed (status.json's message), without opening the worker log.
test('a run\'s row carries its status message as its tooltip', () => {
  const failed = { ...summary.run, state: 'failed' as const, message: 'out of memory while allocating 2 GB for the UNet' };
  const run = find(buildStudioTree([entry], () => ({ ...summary, run: failed }))[0].children, 'run');
  assert.equal(run.description, 'failed · 3/8 epochs, reward 0.457');
  assert.equal(run.tooltip, 'out of memory while allocating 2 GB for the UNet');
});
