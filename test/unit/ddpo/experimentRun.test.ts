import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { trainExperiment } from '../../../src/core/ddpo/experimentRun';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { readMetrics } from '../../../src/core/ddpo/metrics';
import { ExperimentStore } from '../../../src/core/experiment/store';
import { toyConfig, toyPolicyFor } from './helpers';

// An experiment whose model has no folder: only an injected policy can train it.
async function experiment(prompts: string[]): Promise<string> {
  const store = new ExperimentStore(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-run-')));
  await store.create('e', { baseModel: { id: 'no-folder' }, prompts });
  const dir = store.dirOf('e');
  fs.writeFileSync(ddpoLayout(dir).configFile, JSON.stringify({ num_epochs: 2, sample_num_steps: 10, sample_batch_size: 4, sample_num_batches_per_epoch: 2, train_batch_size: 2, eval_seeds: [], reward: 'jpeg_incompressibility' }));
  return dir;
}

test('an injected policy is trained on the experiment\'s prompts and settings, reported per epoch, and left to its owner', async () => {
  const dir = await experiment(['a cat', 'a dog']);
  let released = 0;
  const policy = Object.assign(toyPolicyFor(toyConfig()), { release: async () => { released++; } });
  const epochs: number[] = [];
  const r = await trainExperiment(dir, { policy, onEpoch: (m) => epochs.push(m.epoch) });
  assert.deepEqual([r.firstEpoch, r.lastEpoch, epochs], [0, 1, [0, 1]]);
  assert.deepEqual(Object.keys(readMetrics(ddpoLayout(dir).metricsFile)[0].reward_per_prompt).sort(), ['a cat', 'a dog']);
  assert.equal(released, 0, 'the caller keeps using its policy (the demo evaluates with it)');
});

test('an experiment without prompts is refused naming experiment.json and the field', async () => {
  const dir = await experiment([]);
  await assert.rejects(trainExperiment(dir, { policy: toyPolicyFor(toyConfig()) }), (e: Error) => e.message === `${path.join(dir, 'experiment.json')}: "prompts" is empty; add the prompts to train on`);
});
