import { test } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { parseDdpoConfig, timestepsPerRun, type DdpoConfig } from '../../../src/core/ddpo/config';
import { trainEpoch, type TrainSummary } from '../../../src/core/ddpo/ppo';
import type { EpochSamples } from '../../../src/core/ddpo/sampling';
import type { Policy, PolicyTrainRequest } from '../../../src/core/ddpo/types';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import { ToyPolicy } from './toyPolicy';
import { createOnnxPolicy } from '../../../src/core/ddpo/onnxPolicy';
import { needsFixture, referenceSd } from '../fixtures';
import { withScalarFloatTimestep } from '../train/fixture';
import { loadModel, saveModel } from '../../../src/core/onnx/proto';

// 8 samples of 6 steps, batches of 2, 2 batches per update, 2 PPO passes: 4 updates; a clip range some items cross.
const SETTINGS = { sample_num_steps: 6, sample_batch_size: 4, sample_num_batches_per_epoch: 2, train_batch_size: 2, train_gradient_accumulation_steps: 2,
  train_num_inner_epochs: 2, train_learning_rate: 2e-2, train_clip_range: 2e-2, train_max_grad_norm: 1e9 };
const config = (perRun: number) => parseDdpoConfig({ ...SETTINGS, train_timesteps_per_run: perRun }).config;
const newToy = () => new ToyPolicy(4, { lr: 2e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4 });

async function epochSamples(): Promise<EpochSamples> {
  const s = await newToy().sample({ prompts: ['a cat', 'a dog', 'a cat', 'a fox', 'a dog', 'a cat', 'a fox', 'a dog'], negativePrompt: '', seed: 5, numSteps: 6, eta: 1, guidanceScale: 5 });
  return { ...s, prompts: ['a cat', 'a dog', 'a cat', 'a fox', 'a dog', 'a cat', 'a fox', 'a dog'], metadata: new Array(8).fill({}), rewards: new Array(8).fill(0) };
}

/** Trains one epoch with a fresh toy; returns the summary, the gradient each update saw, the final parameters and the run sizes. */
async function train(c: DdpoConfig, samples: EpochSamples) {
  const toy = newToy();
  const grads: number[][] = [], runSizes: number[] = [], progress: number[] = [];
  const policy: Policy = Object.assign(Object.create(toy) as ToyPolicy, {
    accumulate: (r: PolicyTrainRequest) => { runSizes.push(r.prompts.length); return toy.accumulate(r); },
    update: (max: number) => { grads.push([...toy.grads]); return toy.update(max); },
  });
  const advantages = [1.5, -0.5, 0.7, -1.2, 0.3, -0.9, 1.1, -0.4];
  const summary = await trainEpoch({ config: c, policy, shuffleRng: new GaussianRng(11), epoch: 0, globalStep: 3, onStep: (d) => progress.push(d) }, samples, advantages);
  return { summary, grads, params: [...toy.params], runSizes, progress };
}

const loraValues = async (p: Policy) => [...(await p.lora()).modules.values()].flatMap((m) => [...m.A, ...m.B]);
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1e-12, Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);

test('K timesteps per run give the same gradients, weights and epoch summary as one timestep per run', async () => {
  const samples = await epochSamples();
  const one = await train(config(1), samples);
  assert.deepEqual(new Set(one.runSizes), new Set([2]));
  assert.equal(one.grads.length, 4);
  for (const K of [2, 3, 6]) {
    const packed = await train(config(K), samples);
    // each run holds the batch at K timesteps; progress still counts micro-steps and ends where K = 1 ends
    assert.deepEqual(new Set(packed.runSizes), new Set([2 * K]), `K=${K}`);
    assert.equal(packed.progress.at(-1), one.progress.at(-1));
    assert.equal(packed.grads.length, one.grads.length, `K=${K}: one optimizer step per accumulation window`);
    packed.grads.forEach((g, u) => g.forEach((v, i) => close(v, one.grads[u][i], `K=${K} update ${u} grad[${i}]`)));
    packed.params.forEach((v, i) => close(v, one.params[i], `K=${K} param ${i}`));
    for (const k of ['loss', 'approx_kl', 'clipfrac', 'grad_norm', 'globalStep'] as (keyof TrainSummary)[]) close(packed.summary[k] as number, one.summary[k] as number, `K=${K} ${k}`);
  }
  assert.ok(one.summary.clipfrac > 0 && one.summary.clipfrac < 1, `some but not all items clipped (${one.summary.clipfrac}), so the weighting of run means is tested`);
});

test('a train_timesteps_per_run that does not divide the trained timesteps falls back to its largest divisor, with a warning', async () => {
  const { config: c, warnings } = parseDdpoConfig({ ...SETTINGS, train_timesteps_per_run: 4 }, 'e/ddpo.json');
  assert.equal(timestepsPerRun(c), 3);
  assert.match(warnings.join('\n'), /e\/ddpo.json: "train_timesteps_per_run" 4 does not divide the 6 timesteps trained per sample .* each graph run takes 3/);
  const samples = await epochSamples();
  const [three, four] = [await train(config(3), samples), await train(c, samples)];
  assert.deepEqual(four.runSizes, three.runSizes);
  assert.deepEqual(four.params, three.params);
  assert.equal(timestepsPerRun(parseDdpoConfig({ sample_num_steps: 5, train_timesteps_per_run: 4 }).config), 1);
  assert.equal(timestepsPerRun(parseDdpoConfig({ sample_num_steps: 50, train_timestep_fraction: 0.3, train_timesteps_per_run: 8 }).config), 5);
  assert.deepEqual(parseDdpoConfig({ sample_num_steps: 6, train_timesteps_per_run: 2 }).warnings, []);
  assert.throws(() => parseDdpoConfig({ train_timesteps_per_run: 0 }), /"train_timesteps_per_run" must be a positive integer/);
  assert.equal(parseDdpoConfig({}).config.train_timesteps_per_run, 1);
});

test('the ONNX policy trains an epoch at 2 timesteps per graph run to the same LoRA as at 1', { skip: needsFixture() }, async () => {
  // 2 samples x 2 trained timesteps, batches of 1, one update per batch, 2 passes: 4 AdamW steps; no clipping, so no
  // item sits on the clip boundary where float rounding could flip it
  const base = { sample_num_steps: 4, train_timestep_fraction: 0.5, sample_batch_size: 2, train_batch_size: 1, train_num_inner_epochs: 2, latent_size: 8,
    train_learning_rate: 3e-3, train_clip_range: 1e9, mixed_precision: 'no' };
  const run = async (perRun: number, samples?: EpochSamples) => {
    const c = parseDdpoConfig({ ...base, train_timesteps_per_run: perRun }).config;
    const logs: string[] = [];
    const policy = await createOnnxPolicy(referenceSd, c, { onLog: (l) => logs.push(l) });
    try {
      const prompts = ['a cat', 'a dog'];
      const s = samples ?? { ...(await policy.sample({ prompts, negativePrompt: '', seed: 3, numSteps: 4, eta: 1, guidanceScale: 5 })), prompts, metadata: [{}, {}], rewards: [0, 0] };
      const before = await loraValues(policy);
      const summary = await trainEpoch({ config: c, policy, shuffleRng: new GaussianRng(2), epoch: 0, globalStep: 0 }, s, [1, -1]);
      return { samples: s, summary, before, lora: await loraValues(policy), logs };
    } finally { await policy.release?.(); }
  };
  const one = await run(1);
  const two = await run(2, one.samples);
  assert.match(two.logs.join('\n'), /training graph takes 2 items per run/);
  assert.equal(two.summary.globalStep, 4);
  // the accumulated gradients agree, and so do the AdamW steps they drove (AdamW hardly sees a constant gradient scale,
  // so the norms are what would catch a wrong loss scale)
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
  assert.ok(rel(two.summary.grad_norm, one.summary.grad_norm) < 1e-5, `grad_norm ${two.summary.grad_norm} vs ${one.summary.grad_norm}`);
  assert.ok(rel(two.summary.approx_kl, one.summary.approx_kl) < 1e-3 && Math.abs(two.summary.loss - one.summary.loss) < 1e-6, JSON.stringify([one.summary, two.summary]));
  let diff = 0, norm = 0, moved = 0;
  assert.deepEqual(two.before, one.before);
  two.lora.forEach((v, i) => { diff += (v - one.lora[i]) ** 2; norm += one.lora[i] ** 2; moved += (one.lora[i] - one.before[i]) ** 2; });
  assert.ok(Math.sqrt(diff / moved) < 1e-3, `LoRA differs by ${Math.sqrt(diff / moved)} of what training moved it`);
  assert.ok(Math.sqrt(diff / norm) < 1e-5, `LoRA differs by ${Math.sqrt(diff / norm)} relative`);
});

test('a UNet with one scalar timestep per call trains a run of several timesteps one item at a time, and says so', { skip: needsFixture() }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-scalar-t-'));
  try {
    for (const f of fs.readdirSync(referenceSd)) if (f !== 'unet') fs.symlinkSync(path.join(referenceSd, f), path.join(dir, f));
    saveModel(withScalarFloatTimestep(loadModel(path.join(referenceSd, 'unet/model.onnx'))), path.join(dir, 'unet/model.onnx'));
    const c = parseDdpoConfig({ sample_num_steps: 4, latent_size: 8, train_timesteps_per_run: 2 }).config;
    const logs: string[] = [];
    const policy = await createOnnxPolicy(dir, c, { onLog: (l) => logs.push(l) });
    await policy.release?.();
    assert.ok(logs.some((l) => /training graph takes 1 item\(s\) per run \(the UNet takes one scalar timestep for its whole batch\); 2 items \(train_batch_size 1 x train_timesteps_per_run 2\) run in chunks/.test(l)), logs.join('\n'));
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
