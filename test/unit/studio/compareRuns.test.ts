// A blind comparison of any two runs' checkpoints ("DDPO vs Diffusion-DPO"), rendered with a toy policy: each side is
// drawn with its own checkpoint's LoRA on the same prompts and seeds, and the rating panel's answers score B over A.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listCheckpoints, loadCheckpoint, saveCheckpoint } from '../../../src/core/ddpo/checkpoint';
import { checkpointName, ddpoLayout } from '../../../src/core/ddpo/layout';
import { readDdpoConfig } from '../../../src/core/ddpo/experimentRun';
import { decodePng } from '../../../src/core/image/png';
import { PreferenceStore } from '../../../src/core/reward/store';
import { compareDir, compareQueue, compareResult, listComparisons } from '../../../src/core/studio/compare';
import { runComparison } from '../../../src/core/studio/compareRun';
import { optCompareSide } from '../../../src/worker/handlers/params';
import { brightness, runToy, tempExperiment, toyConfig, toyPolicyFor } from '../ddpo/helpers';

test('DDPO vs Diffusion-DPO: each side drawn with its own checkpoint on the same seeds, rated blind, B\'s win rate over A', async () => {
  const dir = tempExperiment();
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({ schemaVersion: 1, name: 'both', createdAt: '2026-01-01T00:00:00Z', baseModel: { id: 'toy', path: dir }, prompts: ['a cat', 'a dog'] }));
  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({ sample_num_steps: 6 }));
  const config = toyConfig({ num_epochs: 2 });
  await runToy(dir, config, async (imgs) => imgs.map(brightness));
  // a Diffusion-DPO checkpoint: another LoRA in the other run's folder
  const ddpoCkpt = loadCheckpoint(path.join(ddpoLayout(dir).checkpointsDir, checkpointName(1)));
  const other = toyPolicyFor(config);
  await other.loadState(ddpoCkpt.policy);
  other.params.forEach((_, i) => (other.params[i] = 0.2 * (i % 3) - 0.3));
  await saveCheckpoint(ddpoLayout(dir, 'diffusion-dpo').checkpointsDir, { ...ddpoCkpt.loop, epoch: 0 }, await other.saveState(), await other.lora(), 5);

  const renderer = toyPolicyFor(config);
  const m = await runComparison(dir, { modelDir: dir, policy: renderer, seedsPerPrompt: 2, a: { kind: 'checkpoint', algorithm: 'ddpo', epoch: 1 }, b: { kind: 'checkpoint', algorithm: 'diffusion-dpo', epoch: 0 } });
  assert.deepEqual(listComparisons(dir).map((x) => x.id), [m.id]);
  assert.equal(compareResult(dir, m).label, 'Diffusion-DPO epoch 1 vs DDPO epoch 2');
  assert.equal(m.items.length, 4);

  // each image is its side's checkpoint drawn at the item's prompt and seed
  const sampling = readDdpoConfig(dir);
  const read = (rel: string) => fs.readFileSync(path.join(compareDir(dir, m.id), rel));
  const draw = async (state: typeof ddpoCkpt.policy, prompt: string, seed: number) => {
    await renderer.loadState(state);
    return (await renderer.sample({ prompts: [prompt], negativePrompt: sampling.negative_prompts, seed, numSteps: sampling.sample_num_steps, eta: sampling.sample_eta, guidanceScale: sampling.sample_guidance_scale })).images[0];
  };
  const dpoState = loadCheckpoint(path.join(ddpoLayout(dir, 'diffusion-dpo').checkpointsDir, checkpointName(0))).policy;
  for (const it of m.items) {
    assert.deepEqual(decodePng(read(it.a)).data, (await draw(ddpoCkpt.policy, it.prompt, it.seed)).data, `A of ${it.pairId} is the DDPO checkpoint's image`);
    assert.deepEqual(decodePng(read(it.b)).data, (await draw(dpoState, it.prompt, it.seed)).data, `B of ${it.pairId} is the Diffusion-DPO checkpoint's image`);
    assert.notDeepEqual(read(it.a), read(it.b));
  }

  // blind: the rater sees left/right only; preferring B three times and A once gives B 75%
  const queue = compareQueue(dir, m);
  const store = PreferenceStore.open(compareDir(dir, m.id));
  queue.forEach((q, k) => {
    const it = m.items.find((x) => x.pairId === q.pairId)!;
    const wantB = k < 3;
    store.append({ pairId: q.pairId, prompt: q.prompt, left: q.left, right: q.right, choice: (q.left === it.b) === wantB ? 'left' : 'right', sideOrder: 'ab', rater: 't' });
  });
  store.close();
  const r = compareResult(dir, m);
  assert.deepEqual([r.wins, r.losses, r.winRate.rate], [3, 1, 0.75]);
  assert.deepEqual(listCheckpoints(ddpoLayout(dir, 'diffusion-dpo').checkpointsDir), [0]);
});

test('comparing a side with itself, or a run without that checkpoint, is refused naming what to pick', async () => {
  const dir = tempExperiment();
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({ schemaVersion: 1, name: 'one', createdAt: '2026-01-01T00:00:00Z', baseModel: { id: 'toy', path: dir }, prompts: ['a cat'] }));
  const config = toyConfig({ num_epochs: 1 });
  await runToy(dir, config, async (imgs) => imgs.map(brightness));
  const policy = toyPolicyFor(config);
  await assert.rejects(runComparison(dir, { modelDir: dir, policy, seedsPerPrompt: 1, a: { kind: 'base' }, b: { kind: 'base' } }), /both base model; pick two different ones/);
  await assert.rejects(runComparison(dir, { modelDir: dir, policy, seedsPerPrompt: 1, b: { kind: 'checkpoint', algorithm: 'diffusion-dpo', epoch: 0 } }), /no checkpoint in .*diffusion-dpo.*fine-tune for at least one epoch first/);
  assert.throws(() => optCompareSide({ a: { kind: 'checkpoint', algorithm: 'ppo', epoch: 0 } }, 'a'), /"algorithm" must be one of ddpo, diffusion-dpo/);
});
