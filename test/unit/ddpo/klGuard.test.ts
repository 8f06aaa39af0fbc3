import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkpointName, ddpoLayout } from '../../../src/core/ddpo/layout';
import { listCheckpoints, loadCheckpoint } from '../../../src/core/ddpo/checkpoint';
import { klSpike } from '../../../src/core/ddpo/guards';
import { readMetrics } from '../../../src/core/ddpo/metrics';
import { runDdpo } from '../../../src/core/ddpo/trainer';
import type { PolicyState } from '../../../src/core/ddpo/types';
import { brightness, tempExperiment, toyConfig, toyPolicyFor } from './helpers';

const bright = async (imgs: { data: Uint8Array; width: number; height: number }[]) => imgs.map(brightness);
const settings = { num_epochs: 8, sample_batch_size: 16, sample_num_batches_per_epoch: 4, train_clip_range: 1e9, eval_seeds: [], save_freq: 100 };

// Runs the toy loop; from epoch `blowUpAfter` on, the learning rate is raised 3000-fold so the policy diverges.
async function run(guard: number, blowUpAfter: number) {
  const dir = tempExperiment();
  const config = toyConfig({ ...settings, train_kl_guard: guard });
  const policy = toyPolicyFor(config);
  const states = new Map<number, Promise<PolicyState>>();
  const result = await runDdpo({
    config, layout: ddpoLayout(dir), policy, reward: bright, prompts: ['a cat', 'a dog'],
    onEpoch: (m) => {
      states.set(m.epoch, policy.saveState());
      if (m.epoch === blowUpAfter) policy.optim.lr *= 3000;
    },
  });
  return { dir, result, policy, states };
}

test('a KL spike stops the run and keeps, checkpoints and reports the weights from before the diverging epoch', async () => {
  const { dir, result, policy, states } = await run(100, 3);
  assert.deepEqual(result.stoppedEarly && [result.stoppedEarly.epoch, result.stoppedEarly.keptEpoch], [4, 3]);
  assert.match(result.stoppedEarly!.message, /stopped early in epoch 5\/8: approx KL .* is \d+x the median of the earlier epochs \(train_kl_guard 100\); the policy diverged, so the LoRA after epoch 4\/8 is kept/);
  // the policy holds exactly the weights it had when epoch 3 ended
  assert.deepEqual(await policy.saveState(), await states.get(3)!);
  const layout = ddpoLayout(dir);
  const lines = readMetrics(layout.metricsFile);
  assert.deepEqual(lines.map((l) => l.epoch), [0, 1, 2, 3, 4]);
  assert.ok(lines[4].kl_guard && lines[4].approx_kl > 100 * lines[4].kl_guard.median, JSON.stringify(lines[4].kl_guard));
  // save_freq 100 wrote no checkpoint on its own; the guard wrote epoch 3's
  assert.deepEqual(listCheckpoints(layout.checkpointsDir), [3]);
  const ck = loadCheckpoint(path.join(layout.checkpointsDir, checkpointName(3)));
  assert.equal(ck.loop.epoch, 3);
  assert.deepEqual(ck.policy, await states.get(3)!);
  const status = JSON.parse(fs.readFileSync(layout.statusFile, 'utf8'));
  assert.equal(status.state, 'done');
  assert.equal(status.stopped_early, true);
  assert.match(status.message, /the LoRA after epoch 4\/8 is kept/);
});

test('without the guard the same blow-up runs on to the last epoch', async () => {
  const { result } = await run(0, 3);
  assert.equal(result.stoppedEarly, undefined);
  assert.equal(result.lastEpoch, 7);
  assert.equal(result.metrics.length, 8);
});

test('a run that stays calm is never stopped by the guard', async () => {
  const { result } = await run(100, 99);
  assert.equal(result.stoppedEarly, undefined);
  assert.equal(result.metrics.length, 8);
});

test('the spike test compares with the median of at least three earlier epochs', () => {
  assert.equal(klSpike([1e-6, 1e-6], 1, 100), undefined, 'too few epochs to judge');
  assert.equal(klSpike([1e-6, 2e-6, 9e-3], 1.5e-4, 100), undefined, 'one noisy epoch does not raise the bar');
  assert.equal(klSpike([1e-6, 2e-6, 9e-3], 5e-3, 100), 2e-6);
  assert.ok(Math.abs(klSpike([1e-6, 2e-6, 3e-6, 4e-6], 2.6e-4, 100)! - 2.5e-6) < 1e-18, 'an even count takes the mean of the middle two');
  assert.equal(klSpike([1e-6, 2e-6, 3e-6], 1, 0), undefined, 'factor 0 is off');
  assert.equal(klSpike([1e-14, 2e-14, 3e-14], 5e-9, 100), undefined, 'noise-level KL is no divergence, whatever the ratio');
});

test('resuming a run the guard stopped starts again from the kept epoch and replaces the diverged epoch\'s metrics', async () => {
  const { dir } = await run(100, 3);
  const config = toyConfig({ ...settings, train_kl_guard: 100 });
  const resumed = await runDdpo({ config, layout: ddpoLayout(dir), policy: toyPolicyFor(config), reward: bright, prompts: ['a cat', 'a dog'], resume: true });
  assert.equal(resumed.firstEpoch, 4);
  assert.equal(resumed.stoppedEarly, undefined);
  const lines = readMetrics(ddpoLayout(dir).metricsFile);
  assert.deepEqual(lines.map((l) => l.epoch), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(lines[4].kl_guard, undefined, 'the diverged line was replaced by the resumed epoch');
});
