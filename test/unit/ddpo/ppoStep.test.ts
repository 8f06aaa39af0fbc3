// What each PPO optimizer step trains on: advantages clipped to train_adv_clip_max, and the gradient averaged over the
// step's samples however they are split into train_batch_size batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ImageRGB } from '../../../src/core/image/rgb';
import { brightness, runToy, tempExperiment, toyConfig, toyPolicyFor } from './helpers';

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
