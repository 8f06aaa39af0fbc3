import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { trainExperiment } from '../../../src/core/ddpo/experimentRun';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { readMetrics } from '../../../src/core/ddpo/metrics';
import { ExperimentStore } from '../../../src/core/experiment/store';
import { embeddedModelDir } from '../../../src/core/experiment/modelDir';
import { toyConfig, toyPolicyFor } from './helpers';
import { cachedModelDir, defaultModelCacheDir } from '../../../src/core/models/hubDownload';
import { trainExperimentReward } from '../../../src/core/reward/experiment';
import { startMockHub } from '../models/mockHub';
import { writeTestClipFolder } from '../reward/helpers/clipFolder';
import { makeSimulatedExperiment } from '../reward/helpers/simulatedExperiment';

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

test('a reward given to the run replaces the one ddpo.json names, is asked per prompt, and is left to its owner', async () => {
  const dir = await experiment(['a cat', 'a dog']);
  let released = 0;
  const seen = new Set<string>();
  const reward = Object.assign(async (images: unknown[], prompts: string[]) => { prompts.forEach((p) => seen.add(p)); return prompts.map((p) => (p === 'a cat' ? 1 : -1)); }, { release: async () => { released++; } });
  await trainExperiment(dir, { policy: toyPolicyFor(toyConfig()), reward });
  const [first] = readMetrics(ddpoLayout(dir).metricsFile);
  assert.deepEqual(Object.fromEntries(Object.entries(first.reward_per_prompt).map(([p, r]) => [p, [r.mean, r.std]])), { 'a cat': [1, 0], 'a dog': [-1, 0] }, 'the given reward scored the samples, not jpeg_incompressibility');
  assert.deepEqual([...seen].sort(), ['a cat', 'a dog']);
  assert.equal(released, 0);
});

test('a learned reward whose Hub backbone left the cache is downloaded again before the first epoch, and the run hears its progress', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-home-'));
  const hub = await startMockHub({ root: writeTestClipFolder(path.join(home, 'served')) });
  const env = { HOME: process.env.HOME, HF_ENDPOINT: process.env.HF_ENDPOINT };
  Object.assign(process.env, { HOME: home, HF_ENDPOINT: hub.url });
  try {
    const store = new ExperimentStore(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-run-')));
    await store.create('e', { baseModel: { id: 'no-folder' }, prompts: ['a big red circle on a blue background'], rewardBackbone: { id: 'someone/tiny-clip' } });
    const dir = store.dirOf('e');
    makeSimulatedExperiment(dir, { pairs: 30, seed: 5, prompts: ['a big red circle on a blue background'] });
    await trainExperimentReward(dir);
    fs.rmSync(cachedModelDir(defaultModelCacheDir(), 'someone/tiny-clip'), { recursive: true });
    fs.writeFileSync(ddpoLayout(dir).configFile, JSON.stringify({ num_epochs: 1, sample_num_steps: 10, sample_batch_size: 4, sample_num_batches_per_epoch: 1, train_batch_size: 2, eval_seeds: [], reward: 'learned' }));
    const files: string[] = [];
    const r = await trainExperiment(dir, { policy: toyPolicyFor(toyConfig()), onBackboneDownload: (p) => files.push(p.file) });
    assert.equal(r.lastEpoch, 0);
    assert.ok(files.includes('onnx/vision_model.onnx') && files.includes('onnx/text_model.onnx'), files.join(', '));
  } finally {
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    await hub.close();
  }
});

test('an experiment without prompts is refused naming experiment.json and the field', async () => {
  const dir = await experiment([]);
  await assert.rejects(trainExperiment(dir, { policy: toyPolicyFor(toyConfig()) }), (e: Error) => e.message === `${path.join(dir, 'experiment.json')}: "prompts" is empty; add the prompts to train on`);
});

test('a prompt longer than the text encoder reads is told to the run\'s log once, however often it is sampled and trained', { skip: fs.existsSync(path.join(embeddedModelDir(), 'unet', 'model.onnx')) ? false : 'the embedded model is not built' }, async () => {
  // the embedded model's text encoder reads 14 tokens
  const long = 'a big red circle on a blue background next to a small yellow square in the top left corner';
  const store = new ExperimentStore(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-run-')));
  await store.create('e', { baseModel: { id: 'tiny-shapes', path: embeddedModelDir() }, prompts: [long, 'a small green triangle'] });
  const dir = store.dirOf('e');
  fs.writeFileSync(ddpoLayout(dir).configFile, JSON.stringify({ num_epochs: 2, sample_num_steps: 2, sample_batch_size: 4, sample_num_batches_per_epoch: 2, train_batch_size: 2, latent_size: 8, eval_prompts: [long], reward: 'jpeg_incompressibility' }));
  const log: string[] = [];
  await trainExperiment(dir, { onLog: (l) => log.push(l) });
  const warnings = log.filter((l) => l.startsWith('warning: the prompt'));
  assert.equal(warnings.length, 1, log.join('\n'));
  assert.match(warnings[0], /^warning: the prompt "a big red circle on a blue background ne…" is 27 tokens, but the text encoder reads 14 .*; shorten the prompt$/);
});
