import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { CPU_CURVE_SETTINGS, rewardCurve, TINY_PROMPTS } from '../../../src/core/ddpo/rewardCurve';
import { needsTinyModel } from '../fixtures';

// The product's embedded small model (a real trained text-to-image UNet); the random-weight reference fixture is no
// use here: its images are full-entropy noise whose JPEG size barely varies (±0.01 kB), so no reward can rise.
const TINY = path.resolve(__dirname, '../../../media/tiny-model');
const SKIP = needsTinyModel();

test('DDPO raises the JPEG-compressibility reward of the tiny model within a few CPU epochs', { skip: SKIP, timeout: 600_000 }, async (t) => {
  // seed 0 of CPU_CURVE_SETTINGS (12 epochs, 32 samples each); about 30 s on two idle cores
  const { config, curve } = await rewardCurve(TINY, { prompts: TINY_PROMPTS });
  const r = curve.map((p) => p.reward_mean);
  t.diagnostic(`reward per epoch (-kB): ${r.map((x) => x.toFixed(4)).join(' ')}; settings ${JSON.stringify(CPU_CURVE_SETTINGS)}`);
  const perEpoch = config.sample_batch_size * config.sample_num_batches_per_epoch;
  // Noise of an epoch's mean: the first epoch's spread over its samples (images and prompts are drawn afresh each epoch).
  const stderr = curve[0].reward_std / Math.sqrt(perEpoch);
  const last2 = (r[r.length - 1] + r[r.length - 2]) / 2;
  assert.ok(last2 > r[0] + 3 * stderr, `mean of the last two epochs ${last2.toFixed(4)} should exceed the first ${r[0].toFixed(4)} by 3 standard errors (${(3 * stderr).toFixed(4)}): ${r.map((x) => x.toFixed(4)).join(' ')}`);
});
