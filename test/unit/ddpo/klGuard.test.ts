import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkpointName, ddpoLayout } from '../../../src/core/ddpo/layout';
import { listCheckpoints, loadCheckpoint } from '../../../src/core/ddpo/checkpoint';
import { KlGuard, klSpike } from '../../../src/core/ddpo/guards';
import { readMetrics } from '../../../src/core/ddpo/metrics';
import { runDdpo } from '../../../src/core/ddpo/trainer';
import type { PolicyState } from '../../../src/core/ddpo/types';
import { brightness, tempExperiment, toyConfig, toyPolicyFor } from './helpers';

const bright = async (imgs: { data: Uint8Array; width: number; height: number }[]) => imgs.map(brightness);
const settings = { num_epochs: 8, sample_batch_size: 16, sample_num_batches_per_epoch: 4, train_clip_range: 1e9, eval_seeds: [], save_freq: 100 };

// Runs the toy loop; from epoch `blowUpAfter` on, the learning rate is raised 3000-fold so the policy diverges
// (`oneEpoch`: raised 30-fold for that one epoch, a single KL spike the next epoch does not repeat).
async function run(guard: number, blowUpAfter: number, oneEpoch = false, more: Record<string, unknown> = {}) {
  const dir = tempExperiment();
  const config = toyConfig({ ...settings, ...more, train_kl_guard: guard });
  const policy = toyPolicyFor(config);
  const states = new Map<number, Promise<PolicyState>>();
  const result = await runDdpo({
    config, layout: ddpoLayout(dir), policy, reward: bright, prompts: ['a cat', 'a dog'],
    onEpoch: (m) => {
      states.set(m.epoch, policy.saveState());
      if (m.epoch === blowUpAfter) policy.optim.lr *= oneEpoch ? 30 : 3000;
      if (oneEpoch && m.epoch === blowUpAfter + 1) policy.optim.lr /= 30;
    },
  });
  return { dir, result, policy, states };
}

test('two KL spikes in a row stop the run and keep, checkpoint and report the weights from before the first', async () => {
  const { dir, result, policy, states } = await run(100, 3);
  assert.deepEqual(result.stoppedEarly && [result.stoppedEarly.epoch, result.stoppedEarly.keptEpoch], [5, 3]);
  assert.match(result.stoppedEarly!.message, /stopped early in epoch 6\/8: approx KL spiked two epochs in a row, to \S+ in epoch 5 and \S+ in epoch 6 \([\d.e+]+x and [\d.e+]+x the median of the epochs before, train_kl_guard 100\); the policy diverged, so the LoRA after epoch 4\/8 is kept/);
  // the policy holds exactly the weights it had when epoch 3 ended
  assert.deepEqual(await policy.saveState(), await states.get(3)!);
  const layout = ddpoLayout(dir);
  const lines = readMetrics(layout.metricsFile);
  assert.deepEqual(lines.map((l) => l.epoch), [0, 1, 2, 3, 4, 5]);
  for (const l of lines.slice(4)) assert.ok(l.kl_guard && l.approx_kl > 100 * l.kl_guard.median, JSON.stringify(l.kl_guard));
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

test('one KL spike that the next epoch does not repeat is a policy starting to learn: the run goes on, without checkpointing that epoch', async () => {
  const { dir, result } = await run(100, 3, true, { save_freq: 1, num_checkpoint_limit: 100 });
  assert.equal(result.stoppedEarly, undefined);
  const lines = readMetrics(ddpoLayout(dir).metricsFile);
  assert.deepEqual(lines.map((l) => l.kl_guard !== undefined), [false, false, false, false, true, false, false, false]);
  // a kill after epoch 4 resumes from epoch 3, never from the suspect epoch
  assert.deepEqual(listCheckpoints(ddpoLayout(dir).checkpointsDir), [0, 1, 2, 3, 5, 6, 7]);
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

// approx_kl per epoch of real demo runs (metrics.jsonl, 2 digits)
const demoSeed5 = [6.9e-7, 3.8e-7, 3.4e-7, 1.4e-7, 1.6e-7, 1.9e-7, 1.6e-7, 6.1e-7, 4.3e-6, 1.5e-5, 7.1e-5, 4.2e-7, 1.4e-7, 5.3e-7, 5.4e-7, 9.8e-7, 2.3e-6, 1.1e-5, 2.9e-6, 1.5e-5];
const demoSeed1At30 = [4.6e-7, 1.6e-7, 2.7e-7, 7.6e-7, 2.5e-7, 2.4e-7, 1.7e-7, 1.9e-7, 3.2e-7, 5.1e-7, 3.4e-7, 8.2e-7, 1.7e-6, 1.8e-6, 8.6e-7,
  6.9e-6, 1.9e-6, 9.9e-7, 4.4e-7, 8.8e-7, 7.3e-7, 3.3e-7, 1.9e-6, 7.2e-6, 4.0e-6, 9.4e-5, 1.7e-4, 7.1e-4, 1.0e-2];
const demoSeed2At30 = [2.7e-6, 7.2e-7, 5.0e-7, 8.4e-7, 1.6e-6, 4.0e-7, 1.8e-7, 6.4e-7, 2.8e-7, 6.8e-7, 9.4e-7, 3.0e-6, 1.2e-5, 5.5e-6, 8.2e-7,
  3.9e-7, 1.1e-6, 6.1e-7, 7.4e-7, 3.5e-7, 7.3e-7, 1.4e-6, 3.6e-7, 2.3e-6, 5.0e-6, 1.4e-5, 4.3e-5, 8.9e-4, 2.2e-3];

// The guard's verdicts over a whole series, as 'calm' / 'suspect' / 'diverged' per epoch.
const verdicts = (kls: number[], earlier: number[] = []) => { const g = new KlGuard(100, earlier); return kls.map((kl) => g.judge(kl).kind); };

test('demo seed 5 starting to learn (one spike, then calm) is not stopped; seeds 1 and 2 over-optimising at 30 epochs are', () => {
  // a single spike in epoch 11 (7e-5, over 100x the 2e-7 median): stopping there cost seed 5 its wins (65.6% against 71.9%)
  assert.deepEqual(demoSeed5.map((kl, i) => klSpike(demoSeed5.slice(0, i), kl, 100) !== undefined ? i : -1).filter((i) => i >= 0), [10]);
  assert.equal(verdicts(demoSeed5).indexOf('diverged'), -1);
  // seed 1: its weights before epoch 26 won 97.5%, after 26, 27, 28 87.5%, 67.5%, 43.8%
  assert.deepEqual(verdicts(demoSeed1At30).slice(24, 27), ['calm', 'suspect', 'diverged']);
  // seed 2: before epoch 28 85.6%, after it 69.4%
  assert.deepEqual(verdicts(demoSeed2At30).slice(26), ['calm', 'suspect', 'diverged']);
});

test('a resumed run\'s earlier epochs count for the median, never as the first of two spikes', () => {
  assert.deepEqual(verdicts([1e-3, 1e-3], [1e-7, 1e-7, 1e-7, 1e-3]), ['suspect', 'diverged']);
  assert.deepEqual(verdicts([1e-3], [1e-7, 1e-7, 1e-7, 1e-7, 1e-7]), ['suspect']);
  assert.deepEqual(verdicts([1e-3, 1e-3], [1e-3, 1e-3, 1e-3]), ['calm', 'calm']);
});

test('resuming a run the guard stopped starts again from the kept epoch and replaces the diverged epochs\' metrics', async () => {
  const { dir } = await run(100, 3);
  const config = toyConfig({ ...settings, train_kl_guard: 100 });
  const resumed = await runDdpo({ config, layout: ddpoLayout(dir), policy: toyPolicyFor(config), reward: bright, prompts: ['a cat', 'a dog'], resume: true });
  assert.equal(resumed.firstEpoch, 4);
  assert.equal(resumed.stoppedEarly, undefined);
  const lines = readMetrics(ddpoLayout(dir).metricsFile);
  assert.deepEqual(lines.map((l) => l.epoch), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual([lines[4].kl_guard, lines[5].kl_guard], [undefined, undefined], 'the diverged lines were replaced by the resumed epochs');
});
