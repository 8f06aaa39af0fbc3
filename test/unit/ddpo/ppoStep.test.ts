// What each PPO optimizer step trains on: advantages clipped to train_adv_clip_max, and the gradient averaged over the
// step's samples however they are split into train_batch_size batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ImageRGB } from '../../../src/core/image/rgb';
import { brightness, runToy, tempExperiment, toyConfig, toyPolicyFor } from './helpers';

const bright = async (imgs: ImageRGB[]) => imgs.map(brightness);

test('PPO trains on advantages clipped to ±train_adv_clip_max, so one outlier reward cannot take over a step', async () => {
  // the first image of each sampling batch scores 1 more than any other: about 2.6 standard deviations above the mean
  const outliers = async (imgs: ImageRGB[]) => imgs.map((img, i) => brightness(img) + (i === 0 ? 1 : 0));
  const config = toyConfig({ num_epochs: 1, sample_batch_size: 8, train_adv_clip_max: 1, eval_seeds: [] });
  const policy = toyPolicyFor(config);
  const trained: number[] = [];
  const accumulate = policy.accumulate.bind(policy);
  policy.accumulate = async (req) => (trained.push(...req.advantages), accumulate(req));
  await runToy(tempExperiment(), config, outliers, { policy });
  assert.ok(trained.length > 0);
  assert.ok(trained.every((a) => a >= -1 && a <= 1), `advantages beyond ±1: ${trained.filter((a) => Math.abs(a) > 1).join(', ')}`);
  assert.equal(Math.max(...trained), 1, 'the outliers train at the clip value');
});

test('half the train_batch_size with twice the train_gradient_accumulation_steps (what the out-of-memory message advises) trains the same steps', async () => {
  const run = async (batch: number, accumulation: number) => {
    const config = toyConfig({ num_epochs: 1, sample_batch_size: 8, train_batch_size: batch, train_gradient_accumulation_steps: accumulation, eval_seeds: [] });
    return runToy(tempExperiment(), config, bright);
  };
  const whole = await run(8, 1), split = await run(4, 2);
  assert.equal(split.metrics[0].global_step, whole.metrics[0].global_step);
  // each step's gradient is the mean over its 8 samples either way (float32 sums in another order: not bit for bit)
  const g = [whole.metrics[0].grad_norm, split.metrics[0].grad_norm];
  assert.ok(Math.abs(g[1] - g[0]) <= 1e-4 * g[0], `grad_norm ${g[0]} with one batch of 8, ${g[1]} with two of 4`);
  whole.policy.params.forEach((v, i) => assert.ok(Math.abs(split.policy.params[i] - v) <= 1e-5, `param ${i}: ${v} vs ${split.policy.params[i]}`));
});
