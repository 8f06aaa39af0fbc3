import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CKPT_FILES, listCheckpoints, loadCheckpoint, pruneCheckpoints, saveCheckpoint, type LoopState } from '../../../src/core/ddpo/checkpoint';
import { checkpointName, ddpoLayout } from '../../../src/core/ddpo/layout';
import { RunRngs } from '../../../src/core/ddpo/random';
import { tempExperiment, toyConfig, toyPolicyFor } from './helpers';

// No process has this id (Linux caps pids far below it): a leftover named for it is a dead writer's.
const DEAD_PID = 999999999;

/** Saves checkpoint `epoch` of a toy policy whose first parameter is `marker`, as the loop does. */
async function saveToy(checkpointsDir: string, epoch: number, marker: number): Promise<void> {
  const config = toyConfig();
  const policy = toyPolicyFor(config);
  policy.params[0] = marker;
  const loop: LoopState = { format: 1, epoch, globalStep: 10 * marker, rng: RunRngs.fromSeed(0).state(), statTracker: null, config, savedAt: new Date().toISOString() };
  await saveCheckpoint(checkpointsDir, loop, await policy.saveState(), await policy.lora(), 5);
}

test('a checkpoint a dead writer left half-written is deleted by the next prune, not put in place as its epoch', async () => {
  const ck = ddpoLayout(tempExperiment()).checkpointsDir;
  await saveToy(ck, 2, 1);
  // killed while writing epoch 3: the tensors are there, state.json (written last) is not
  const torn = path.join(ck, `.tmp-${checkpointName(3)}-${DEAD_PID}-x`);
  fs.mkdirSync(torn);
  fs.writeFileSync(path.join(torn, CKPT_FILES.training), 'half a safetensors file');
  await pruneCheckpoints(ck, 5);
  assert.deepEqual(listCheckpoints(ck), [2]);
  // an epoch-000003 folder without state.json would be a checkpoint Resume skips and a later save must step aside
  assert.deepEqual(fs.readdirSync(ck), [checkpointName(2)], 'nothing of the torn write is left');
});

test('saving an epoch again replaces its checkpoint: the second save loads back, and no stepped-aside copy is left', async () => {
  const ck = ddpoLayout(tempExperiment()).checkpointsDir;
  await saveToy(ck, 1, 1);
  await saveToy(ck, 1, 2);
  assert.deepEqual(fs.readdirSync(ck), [checkpointName(1)], 'the replaced copy is gone from the folder');
  const back = loadCheckpoint(path.join(ck, checkpointName(1)));
  assert.equal(back.loop.globalStep, 20);
  assert.equal((back.policy.tensors.get('p')!.data as Float64Array)[0], 2);
});
