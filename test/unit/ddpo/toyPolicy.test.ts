// The toy policy stands in for the UNet in the DDPO loop tests, so its hand-written PPO gradient is checked here
// against finite differences of its own loss, and the loop is shown to learn with it at the demo's clip range.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PolicyTrainRequest } from '../../../src/core/ddpo/types';
import { brightness, runToy, tempExperiment, toyConfig } from './helpers';
import { ToyPolicy } from './toyPolicy';

const OPTIM = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
const STEPS = 4;

/**
 * PPO items from samples drawn with the parameters `sampledWith`: every (image, step) transition, with advantages of
 * both signs, so that with other parameters some ratios fall outside the clip range and some inside.
 */
async function ppoItems(policy: ToyPolicy, sampledWith: number[], clipRange: number): Promise<PolicyTrainRequest> {
  policy.params.set(sampledWith);
  const prompts = ['a cat', 'a dog', 'a cat'];
  const s = await policy.sample({ prompts, negativePrompt: '', seed: 5, numSteps: STEPS, eta: 1, guidanceScale: 3 });
  const D = policy.D;
  const req: PolicyTrainRequest = { prompts: [], negativePrompt: '', timesteps: [], latents: [], nextLatents: [], oldLogProbs: [], advantages: [], numSteps: STEPS, eta: 1, guidanceScale: 3, cfg: true, clipRange, lossScale: 0.5 };
  prompts.forEach((prompt, k) => s.timesteps.forEach((t, j) => {
    req.prompts.push(prompt);
    req.timesteps.push(t);
    req.latents.push(s.latents[k].slice(j * D, (j + 1) * D));
    req.nextLatents.push(s.latents[k].slice((j + 1) * D, (j + 2) * D));
    req.oldLogProbs.push(s.logProbs[k][j]);
    req.advantages.push([1.3, -0.7, 0.4, -1.9, 0.9][req.advantages.length % 5]);
  }));
  return req;
}

for (const clipRange of [1e9, 0.05, 1e-4]) {
  test(`the toy policy's PPO gradient matches finite differences of its loss (clip range ${clipRange})`, async () => {
    const policy = new ToyPolicy(4, OPTIM, 32);
    const req = await ppoItems(policy, [0.05, -0.1, 0.02, 0.03, -0.02, 0.01], clipRange);
    // other parameters than the samples were drawn with, so the ratios move away from 1
    const at = [0.08, -0.13, 0.04, 0.05, -0.05, 0.02];
    policy.params.set(at);
    policy.grads.fill(0);
    const stats = await policy.accumulate(req);
    const analytic = Array.from(policy.grads, (g) => g / req.lossScale);
    policy.grads.fill(0);
    const lossAt = async (p: number[]) => { policy.params.set(p); const r = await policy.accumulate(req); policy.grads.fill(0); return r.loss; };
    // five-point stencil: its O(h^4) error allows a step large enough to stay clear of float32 rounding in the DDIM step
    const h = 3e-3;
    for (let i = 0; i < at.length; i++) {
      const shifted = (k: number) => at.map((v, j) => (j === i ? v + k * h : v));
      const numeric = (8 * ((await lossAt(shifted(1))) - (await lossAt(shifted(-1)))) - ((await lossAt(shifted(2))) - (await lossAt(shifted(-2))))) / (12 * h);
      assert.ok(Math.abs(numeric - analytic[i]) <= 1e-2 * Math.abs(numeric) + 1e-5, `param ${i}: analytic ${analytic[i]} vs numeric ${numeric} (clipfrac ${stats.clipfrac})`);
    }
    if (clipRange === 0.05) assert.ok(stats.clipfrac > 0 && stats.clipfrac < 1, `some items clipped, some not: clipfrac ${stats.clipfrac}`);
    if (clipRange === 1e-4) assert.ok(stats.clipfrac === 1, `every item outside a clip range of 1e-4: clipfrac ${stats.clipfrac}`);
  });
}

test('the loop learns at the demo\'s clip range of 0.05, whichever direction the reward asks for, with PPO clipping some items', async () => {
  const dark = async (imgs: Parameters<typeof brightness>[0][]) => imgs.map((i) => -brightness(i));
  const bright = async (imgs: Parameters<typeof brightness>[0][]) => imgs.map(brightness);
  for (const reward of [bright, dark]) {
    const config = toyConfig({ num_epochs: 12, sample_batch_size: 16, sample_num_batches_per_epoch: 4, train_clip_range: 0.05, eval_seeds: [], save_freq: 100 });
    const { metrics } = await runToy(tempExperiment(), config, reward);
    const curve = metrics.map((m) => m.reward_mean);
    const rise = (curve[10] + curve[11]) / 2 - (curve[0] + curve[1]) / 2;
    assert.ok(rise > 0.008, `reward should rise: ${curve.map((r) => r.toFixed(4)).join(' ')}`);
    const clipped = metrics.map((m) => m.clipfrac);
    assert.ok(clipped.some((f) => f > 0) && clipped.every((f) => f < 0.5), `PPO clips some items, not most: clipfrac ${clipped.map((f) => f.toFixed(2)).join(' ')}`);
  }
});
