// Worker Status names the reward backbones: the one a job of this worker opened last, and the one each experiment's
// reward model trains on, so a person can tell which CLIP their taste is learned through before any job has run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installFakeVscode } from './fakeVscode';
import { newExperiment } from '../../../src/core/experiment/schema';
import { EMBEDDED_MODEL_ID } from '../../../src/core/experiment/modelDir';
import { statsBackbone } from '../../../src/core/reward/backbone';
import { lastBackboneOpened, noteBackboneOpened } from '../../../src/worker/rewardBackbones';
import type { WorkerStatus } from '../../../src/protocol';

installFakeVscode();

const status = (rewardBackbone?: string): WorkerStatus => ({
  pid: 7, platform: 'linux', arch: 'x64', node: '20.0.0', onnxruntime: '1.30.0', executionProviders: ['cpu'], missingExecutionProviders: [],
  chosenExecutionProvider: 'cpu', uptimeSeconds: 3, ...(rewardBackbone ? { rewardBackbone } : {}),
});

test('Worker Status names the backbone opened last, and each experiment\'s before any job opened one', async () => {
  const { describeStatus, describeStatusLong } = await import('../../../src/extension/commands/workerStatus');
  const experiments = [
    { name: 'shapes', experiment: newExperiment('shapes', { baseModel: { id: EMBEDDED_MODEL_ID } }) },
    { name: 'cats', experiment: newExperiment('cats', { baseModel: { id: 'sd15', path: '/m' }, rewardPrior: 'aesthetic' }) },
    { name: 'mine', experiment: newExperiment('mine', { baseModel: { id: 'sd15', path: '/m' }, rewardBackbone: { id: 'my-clip', path: '/clip' } }) },
  ];
  const fresh = describeStatusLong(status(), experiments);
  assert.match(fresh, /reward backbone opened last: none yet\n  reward backbones the experiments train on:\n    shapes: built-in shape features\n    cats: Xenova\/clip-vit-large-patch14, starting from aesthetic\n    mine: my-clip \(\/clip\)$/);
  assert.doesNotMatch(describeStatus(status()), /Reward backbone/);
  // after a job opened one, the notification names it, where it ran and when
  noteBackboneOpened({ ...statsBackbone, provider: 'cpu' });
  const opened = lastBackboneOpened();
  assert.equal(opened, 'built-in shape features on cpu, just now');
  assert.match(describeStatus(status(opened)), /using cpu\. Reward backbone: built-in shape features on cpu, just now\.$/);
  assert.equal(lastBackboneOpened(Date.now() + 5 * 60_000), 'built-in shape features on cpu, 5 min ago');
});
