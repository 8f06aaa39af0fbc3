// v-prediction (SD 2.x 768-v) and the timestep spacings (leading, trailing as SD-Turbo, linspace) through sampling,
// the DDIM log-probabilities and the DDPO objective: the training graph scores the sampler's own transitions exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../../src/core/onnx/proto';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { createOnnxPolicy } from '../../../src/core/ddpo/onnxPolicy';
import { transitionRequest } from '../ddpo/transitions';
import { needsFixture, referenceSd } from '../fixtures';
import { variantFolder } from './fixture';

const base = JSON.parse(fs.readFileSync(join(referenceSd, 'scheduler/scheduler_config.json'), 'utf8')) as Record<string, unknown>;
const config = parseDdpoConfig({ sample_num_steps: 4, sample_batch_size: 2, train_batch_size: 2, latent_size: 8, lora_rank: 2, train_learning_rate: 3e-2, train_clip_range: 1e9 }).config;
const PROMPTS = ['a cat', 'a dog'];

for (const scheduler of [
  { prediction_type: 'v_prediction', timestep_spacing: 'trailing', clip_sample: true, clip_sample_range: 1, timesteps: [999, 749, 499, 249] },
  { prediction_type: 'epsilon', timestep_spacing: 'linspace', timesteps: [999, 666, 333, 0] },
]) {
  test(`${scheduler.prediction_type}, ${scheduler.timestep_spacing} spacing${scheduler.clip_sample ? ', x̂₀ clipped' : ''}: the training graph recomputes the sampler's log-probabilities at every step and learns`, { skip: needsFixture() }, async () => {
    const dir = variantFolder(loadModel(join(referenceSd, 'unet/model.onnx')), { scheduler: { ...base, ...scheduler } });
    const policy = await createOnnxPolicy(dir, config);
    try {
      const s = await policy.sample({ prompts: PROMPTS, negativePrompt: '', seed: 5, numSteps: 4, eta: 1, guidanceScale: 5 });
      assert.deepEqual(s.timesteps, scheduler.timesteps);
      // linspace's last step (to t = 0) is deterministic: probability 1
      if (scheduler.timestep_spacing === 'linspace') assert.deepEqual(s.logProbs.map((lp) => lp[3]), [0, 0]);
      for (let j = 0; j < 4; j++) {
        const r = await policy.accumulate(transitionRequest(s, j, PROMPTS));
        assert.ok(r.approxKl < 1e-8 && Math.abs(r.loss) < 1e-5, `step ${j} (t ${s.timesteps[j]}): ${JSON.stringify(r)}`);
      }
      assert.ok((await policy.update(1)).gradNorm > 0);
    } finally { await policy.release?.(); }
  });
}
