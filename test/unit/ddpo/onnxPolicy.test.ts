import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { createOnnxPolicy } from '../../../src/core/ddpo/onnxPolicy';
import type { Policy, PolicySamples, PolicyTrainRequest } from '../../../src/core/ddpo/types';
import { needsFixture, referenceSd } from '../fixtures';
import { transitionRequest } from './transitions';

// No clipping, so every update moves the policy; a large LoRA learning rate so a few steps are visible.
const config = parseDdpoConfig({ sample_num_steps: 4, sample_batch_size: 2, train_batch_size: 2, latent_size: 8, lora_rank: 4, train_learning_rate: 3e-2, train_clip_range: 1e9 }).config;
const PROMPTS = ['a cat', 'a dog'];
const sample = (p: Policy) => p.sample({ prompts: PROMPTS, negativePrompt: '', seed: 7, numSteps: 4, eta: 1, guidanceScale: 5 });

/** The PPO request for timestep index `j` of both samples, advantage +1 for the first and -1 for the second. */
const request = (s: PolicySamples, j: number): PolicyTrainRequest => transitionRequest(s, j, PROMPTS);

const normB = async (p: Policy) => {
  let sq = 0;
  for (const m of (await p.lora()).modules.values()) for (const v of m.B) sq += v * v;
  return Math.sqrt(sq);
};

test('PPO updates reach the LoRA, make the rewarded transition likelier and change the samples; a saved state restores them', { skip: needsFixture() }, async () => {
  const policy = await createOnnxPolicy(referenceSd, config);
  try {
    const s0 = await sample(policy);
    const first = await policy.accumulate(request(s0, 1));
    // the training graph recomputes the sampler's log-probabilities: ratio 1, so loss = -mean(A) = 0 and KL 0
    assert.ok(first.approxKl < 1e-8 && Math.abs(first.loss) < 1e-5, JSON.stringify(first));
    assert.equal(await normB(policy), 0); // PEFT init: B = 0
    assert.ok((await policy.update(1)).gradNorm > 0);
    for (let k = 0; k < 4; k++) { await policy.accumulate(request(s0, 1)); await policy.update(1); }
    assert.ok(await normB(policy) > 0);
    const after = await policy.accumulate(request(s0, 1));
    await policy.update(1); // an ordinary step, which also empties the gradient accumulator before the state is saved
    // loss = -mean(A·ratio) = -(ratio₀ - ratio₁)/2 < 0: the advantaged sample's transition gained probability
    assert.ok(after.loss < -1e-4 && after.approxKl > 1e-8, JSON.stringify(after));
    const s1 = await sample(policy);
    assert.notDeepEqual(Array.from(s1.latents[0].subarray(-16)), Array.from(s0.latents[0].subarray(-16)));

    const state = await policy.saveState();
    const again = await createOnnxPolicy(referenceSd, config);
    try {
      await again.loadState(state);
      assert.deepEqual(Array.from((await sample(again)).latents[0]), Array.from((await sample(policy)).latents[0]));
      // the optimizer moments came along: the next step is the same in both
      const [a, b] = [await policy.accumulate(request(s0, 2)), await again.accumulate(request(s0, 2))];
      assert.equal(a.loss, b.loss);
      await Promise.all([policy.update(1), again.update(1)]);
      const values = async (p: Policy) => [...(await p.lora()).modules.values()].map((m) => [Array.from(m.A), Array.from(m.B)]);
      assert.deepEqual(await values(again), await values(policy));
    } finally { await again.release?.(); }
  } finally { await policy.release?.(); }
});

test('mixed_precision "fp16" computes in float16 only where a GPU provider really opens; elsewhere the policy trains in float32', { skip: needsFixture() }, async () => {
  const { probeProvider } = await import('../../../src/core/runtime/sessionProviders');
  const providers = { candidates: ['webgpu', 'cpu'] as ('webgpu' | 'cpu')[] };
  const gpu = (await probeProvider(providers)).ep !== 'cpu';
  const logs: string[] = [];
  const policy = await createOnnxPolicy(referenceSd, { ...config, mixed_precision: 'fp16' }, { providers, onLog: (l) => logs.push(l) });
  try {
    assert.equal(logs.some((l) => /compute in float16/.test(l)), gpu, logs.join('\n'));
    const s0 = await sample(policy);
    const first = await policy.accumulate(request(s0, 1));
    // float32 recomputes the sampler's log-probabilities exactly; float16 to about its precision
    assert.ok(first.approxKl < (gpu ? 1e-3 : 1e-8), JSON.stringify(first));
  } finally { await policy.release?.(); }
});

test('the float16 policy with fused attention (a GPU provider\'s graphs, forced onto the CPU here) samples, recomputes its log-probabilities closely and learns', { skip: needsFixture() }, async () => {
  const logs: string[] = [];
  const policy = await createOnnxPolicy(referenceSd, config, { precision: 'fp16', fuseAttention: true, onLog: (l) => logs.push(l) });
  try {
    assert.ok(logs.some((l) => /compute in float16/.test(l)) && logs.some((l) => /attention cores fused/.test(l)), logs.join('\n'));
    const s0 = await sample(policy);
    assert.ok(s0.logProbs.flat().every(Number.isFinite));
    const first = await policy.accumulate(request(s0, 1));
    assert.ok(first.approxKl < 1e-3, JSON.stringify(first));
    for (let k = 0; k < 4; k++) { await policy.accumulate(request(s0, 1)); assert.ok((await policy.update(1)).applied); }
    assert.ok(await normB(policy) > 0, 'the LoRA moved');
  } finally { await policy.release?.(); }
});

test('with fused attention in its sampling graph (what GPU providers get) the policy still recomputes its log-probabilities and learns', { skip: needsFixture() }, async () => {
  const logs: string[] = [];
  const policy = await createOnnxPolicy(referenceSd, config, { fuseAttention: true, onLog: (l) => logs.push(l) });
  try {
    assert.ok(logs.some((l) => /attention cores fused \(specialised to UNet batch 4\)/.test(l)), logs.join('\n'));
    const s0 = await sample(policy);
    const first = await policy.accumulate(request(s0, 1));
    // the standard-op training graph agrees with the fused sampler to float32 rounding: ratio 1, KL ~0
    assert.ok(first.approxKl < 1e-8 && Math.abs(first.loss) < 1e-5, JSON.stringify(first));
    for (let k = 0; k < 4; k++) { await policy.accumulate(request(s0, 1)); assert.ok((await policy.update(1)).applied); }
    assert.ok(await normB(policy) > 0, 'the LoRA moved');
    const s1 = await sample(policy);
    assert.notDeepEqual(Array.from(s1.latents[0].subarray(-16)), Array.from(s0.latents[0].subarray(-16)), 'the fused sampler sees the updated LoRA');
  } finally { await policy.release?.(); }
});

// The loop's evaluation pass samples one prompt per call (UNet batch 2) with a graph specialised to sample_batch_size
// prompts (UNet batch 4 here): the specialised graph runs it as one chunk padded with copies of its first row.
test('a sampling graph specialised to sample_batch_size prompts also samples one prompt, as the unfused sampler does', { skip: needsFixture() }, async () => {
  const one = (p: Policy) => p.sample({ prompts: ['a cat'], negativePrompt: '', seed: 7, numSteps: 4, eta: 1, guidanceScale: 5 });
  const maxRelDiff = (a: Float32Array, b: Float32Array) => {
    let e = 0, s = 0;
    for (let i = 0; i < a.length; i++) { e = Math.max(e, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(b[i])); }
    return e / s;
  };
  for (const precision of ['fp32', 'fp16'] as const) {
    const logs: string[] = [];
    const [fused, plain] = [
      await createOnnxPolicy(referenceSd, config, { precision, fuseAttention: true, onLog: (l) => logs.push(l) }),
      await createOnnxPolicy(referenceSd, config, { precision, fuseAttention: false }),
    ];
    try {
      assert.ok(logs.some((l) => /specialised to UNet batch 4/.test(l)), logs.join('\n'));
      const [f, u] = [await one(fused), await one(plain)];
      assert.equal(f.latents.length, 1);
      // the fused graph's tolerances: float32 rounding (1e-4), float16 against the standard-op float16 graph (2e-2)
      const err = maxRelDiff(f.latents[0], u.latents[0]);
      assert.ok(err < (precision === 'fp32' ? 1e-4 : 2e-2), `${precision}: the fused sampler's latents differ by ${err}`);
      // the padding rows change nothing: the prompt sampled alone is the first image of the full batch
      assert.deepEqual(Array.from(f.latents[0]), Array.from((await sample(fused)).latents[0]));
    } finally { await Promise.all([fused.release?.(), plain.release?.()]); }
  }
});

test('float16 graphs recompute the sampler\'s log-probabilities only to rounding; auto rescores them, so nothing is clipped before the first update', { skip: needsFixture() }, async () => {
  const { trainEpoch } = await import('../../../src/core/ddpo/ppo');
  const { GaussianRng } = await import('../../../src/core/diffusion/rng');
  // TRL's clip range 1e-4; one update after both samples' 4 timesteps, so every micro-step sees the sampler's LoRA
  const settings = { sample_num_steps: 4, sample_batch_size: 2, train_batch_size: 2, latent_size: 8, lora_rank: 4, train_clip_range: 1e-4, train_num_inner_epochs: 1 };
  const epoch = async (precision: 'fp32' | 'fp16', mode: string) => {
    const c = parseDdpoConfig({ ...settings, train_old_log_probs: mode }).config;
    const policy = await createOnnxPolicy(referenceSd, c, { precision });
    try {
      const s = { ...(await sample(policy)), prompts: PROMPTS, metadata: [{}, {}], rewards: [0, 0] };
      return await trainEpoch({ config: c, policy, shuffleRng: new GaussianRng(1), epoch: 0, globalStep: 0 }, s, [1, -1]);
    } finally { await policy.release?.(); }
  };
  const fp32 = await epoch('fp32', 'auto');
  assert.deepEqual([fp32.clipfrac_before_update, fp32.old_log_probs], [0, 'sampler']);
  assert.ok(fp32.logprob_mismatch! < 1e-5, `float32 recomputes them to ${fp32.logprob_mismatch}`);
  const trl = await epoch('fp16', 'sampler');
  assert.ok(trl.clipfrac_before_update > 0, 'float16 recomputes the log-probabilities within the clip range: nothing to rescore');
  // the approx KL is reported in float32: as a float16 output it would be a subnormal multiple of 6e-8
  assert.ok(trl.approx_kl > 0 && Math.abs(trl.approx_kl / 5.960464477539063e-8 - Math.round(trl.approx_kl / 5.960464477539063e-8)) > 1e-3, `approx_kl ${trl.approx_kl}`);
  const auto = await epoch('fp16', 'auto');
  assert.deepEqual([auto.clipfrac_before_update, auto.old_log_probs], [0, 'training_graph']);
  assert.ok(auto.logprob_mismatch! > 1e-4 && auto.logprob_mismatch! < 1e-2, `mismatch ${auto.logprob_mismatch}`);
  // unclipped before the update, the gradient is whole: larger than TRL's, of which clipping removed a part
  assert.ok(auto.grad_norm > 1.1 * trl.grad_norm, `grad norm ${auto.grad_norm} vs ${trl.grad_norm}`);
});
