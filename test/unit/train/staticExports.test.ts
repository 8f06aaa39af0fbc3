// Exports whose shapes are fixed (a static batch with baked Reshape targets, fixed latents and text length) or whose
// timestep is one scalar for the whole batch: conformance, chunked training and a DDPO epoch, as on the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../../src/core/onnx/proto';
import type { Model } from '../../../src/core/onnx/ir';
import { ConformanceResult, checkUnetDdpo, checkUnetForward, checkUnetVjp } from '../../../src/core/train/conformance';
import { ddpoGraphLayout, ddpoInputShapes, ddpoObjective, ddpoScheduleFeeds } from '../../../src/core/train/objective';
import { runDdpoBatch, type DdpoBatch } from '../../../src/core/train/ddpoBatch';
import { TrainingSession } from '../../../src/core/train/session';
import { readLora } from '../../../src/core/train/loraFile';
import { makeDdimSchedule, parseDdimConfig } from '../../../src/core/diffusion/ddim';
import { readSafetensors, toFloat32, writeSafetensors } from '../../../src/core/safetensors';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { createOnnxPolicy } from '../../../src/core/ddpo/onnxPolicy';
import { runDdpo } from '../../../src/core/ddpo/trainer';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { sampleDdim } from '../../../src/core/diffusion/sampler';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { makeReward } from '../../../src/core/ddpo/rewards';
import { needsFixture, referenceSd } from '../fixtures';
import { variantFolder, withScalarFloatTimestep, withStaticShapes } from './fixture';

const reference = () => loadModel(join(referenceSd, 'unet/model.onnx'));

function assertAllPass(results: ConformanceResult[]): void {
  assert.ok(results.length > 0);
  for (const r of results) assert.ok(r.passed, `${r.name}: max rel err ${r.maxRelErr} (${r.detail ?? ''})`);
}

async function conformance(model: Model): Promise<void> {
  assertAllPass(await checkUnetForward(referenceSd, model));
  assertAllPass(await checkUnetVjp(referenceSd, model));
  assertAllPass(await checkUnetDdpo(referenceSd, model));
}

test('a static batch of 2 with baked Reshape targets passes forward, VJP and DDPO-step conformance (one sample per run)', { skip: needsFixture() }, async () => {
  const m = withStaticShapes(reference(), { batch: 2 });
  assert.ok(m.graph.nodes.some((n) => n.opType === 'Reshape' && m.graph.initializers.get(n.inputs[1])?.data[0] === 2n), 'a Reshape target carries the batch');
  assert.deepEqual(ddpoGraphLayout(m, 4), { samples: 1, unetCalls: 1, scalarTimestep: false });
  await conformance(m);
});

test('a static batch of 1 runs the UNet twice per sample (uncond, cond) in one training graph and passes conformance', { skip: needsFixture() }, async () => {
  const m = withStaticShapes(reference(), { batch: 1 });
  assert.deepEqual(ddpoGraphLayout(m, 4), { samples: 1, unetCalls: 2, scalarTimestep: false });
  await conformance(m);
});

test('a static batch with one scalar timestep passes conformance: rows of one run share their timestep', { skip: needsFixture() }, async () => {
  const m = withStaticShapes(withScalarFloatTimestep(reference()), { batch: 2 });
  assert.deepEqual(m.graph.inputs.find((v) => v.name === 'timestep')!.shape, []);
  await conformance(m);
});

// Three samples, two of them at one timestep, from the oracle's DDPO inputs; PPO clip 0.2 so most gradients flow.
function threeSamples(): DdpoBatch {
  const o = new Map([...readSafetensors(join(referenceSd, 'unet/oracle.safetensors'))].map(([k, t]) => [k, toFloat32(t)]));
  const rows = (key: string, pick: number[]) => {
    const v = o.get(key)!, per = v.length / 2, out = new Float32Array(pick.length * per);
    pick.forEach((r, k) => out.set(v.subarray(r * per, (r + 1) * per), k * per));
    return out;
  };
  const pick = [0, 1, 0];
  const timesteps = [801, 501, 801];
  const schedule = makeDdimSchedule(parseDdimConfig(JSON.parse(fs.readFileSync(join(referenceSd, 'scheduler/scheduler_config.json'), 'utf8'))));
  const s = ddpoScheduleFeeds(schedule, timesteps, 20, 1);
  return {
    latents: rows('ddpo.latents', pick), nextLatents: rows('ddpo.next_latents', pick), timesteps,
    uncondEmbeds: rows('ddpo.uncond_embeds', pick), condEmbeds: rows('ddpo.cond_embeds', pick),
    oldLogProbs: Array.from(rows('ddpo.old_log_prob', pick)), advantages: [1.3, -0.7, 0.4],
    alphaProdT: Array.from(s.alpha_prod_t.data), alphaProdTPrev: Array.from(s.alpha_prod_t_prev.data),
    eta: 1, guidanceScale: 5, clipRange: 0.2,
  };
}

async function chunkedStep(model: Model, batch: DdpoBatch) {
  const layout = ddpoGraphLayout(model, batch.timesteps.length);
  const weights = readLora(join(referenceSd, 'unet/lora_peft.safetensors'));
  const S = layout.samples;
  const session = await TrainingSession.create(model, {
    lora: { rank: weights.rank, alpha: weights.alpha }, weights,
    objective: (m) => ddpoObjective(m, { advClipMax: 5 }, layout.unetCalls),
    inputShapes: ddpoInputShapes([S, 4, 16, 16], [S, 77, 32], layout.scalarTimestep),
  });
  try {
    return { layout, r: await runDdpoBatch(session, { ...layout, latent: [4, 16, 16], embeds: [77, 32] }, batch, 'step') };
  } finally { await session.release(); }
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0, s = 0;
  for (let i = 0; i < b.length; i++) { e = Math.max(e, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(b[i])); }
  return s ? e / s : e;
}

test('a batch run in chunks of a fixed-batch or scalar-timestep graph (last chunk padded) has the loss, metrics and gradient of one big batch', { skip: needsFixture() }, async () => {
  const batch = threeSamples();
  const whole = await chunkedStep(reference(), batch);
  assert.equal(whole.layout.samples, 3);
  assert.ok(whole.r.clipfrac > 0 && whole.r.clipfrac < 1, `some samples clipped, not all: ${whole.r.clipfrac}`);
  for (const variant of [withStaticShapes(reference(), { batch: 4 }), withScalarFloatTimestep(reference())]) {
    const { layout, r } = await chunkedStep(variant, batch);
    assert.ok(layout.samples < 3);
    assert.ok(Math.abs(r.loss - whole.r.loss) <= 1e-5 * Math.abs(whole.r.loss), `loss ${r.loss} vs ${whole.r.loss}`);
    assert.ok(maxRel(r.logProbs, whole.r.logProbs) < 1e-5 && maxRel(r.ratios, whole.r.ratios) < 1e-5);
    assert.ok(Math.abs(r.approxKl - whole.r.approxKl) <= 1e-4 * whole.r.approxKl, `approx_kl ${r.approxKl} vs ${whole.r.approxKl}`);
    assert.ok(Math.abs(r.clipfrac - whole.r.clipfrac) < 1e-6, `clipfrac ${r.clipfrac} vs ${whole.r.clipfrac}`);
    for (const [k, g] of whole.r.grads) assert.ok(maxRel(r.grads.get(k)!, g) < 1e-4, `${k}: ${maxRel(r.grads.get(k)!, g)}`);
  }
});

const epochConfig = (extra: Record<string, unknown> = {}) => parseDdpoConfig({
  num_epochs: 1, sample_num_steps: 2, sample_batch_size: 2, sample_num_batches_per_epoch: 1, train_batch_size: 2,
  eval_seeds: [], lora_rank: 2, ...extra,
}).config;

async function oneEpoch(modelDir: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const logs: string[] = [];
  const config = epochConfig(extra);
  const policy = await createOnnxPolicy(modelDir, config, { onLog: (l) => logs.push(l) });
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'ddpo-static-epoch-'));
  try {
    const r = await runDdpo({ config, layout: ddpoLayout(dir), policy, reward: await makeReward(config.reward, dir), prompts: ['a cat', 'a dog'] });
    assert.equal(r.metrics.length, 1);
    const m = r.metrics[0] as unknown as Record<string, number>;
    assert.ok(Number.isFinite(m.approx_kl) && Number.isFinite(m.reward_mean), JSON.stringify(m));
    return { metrics: m, logs };
  } finally { await policy.release?.(); fs.rmSync(dir, { recursive: true, force: true }); }
}

test('one DDPO epoch samples and trains on a static-batch export and on a scalar-timestep export, in chunks', { skip: needsFixture() }, async () => {
  const fixed = await oneEpoch(variantFolder(withStaticShapes(reference(), { batch: 2 })));
  assert.ok((fixed.logs as string[]).some((l) => /1 item\(s\) per run \(the UNet is exported for a fixed batch of 2\)/.test(l)), (fixed.logs as string[]).join('\n'));
  // latent_size 0 takes the size a static export fixes (16 here); the dynamic one is told
  const scalar = await oneEpoch(variantFolder(withScalarFloatTimestep(reference())), { latent_size: 16 });
  assert.ok((scalar.logs as string[]).some((l) => /one scalar timestep/.test(l)), (scalar.logs as string[]).join('\n'));
});

test('a latent size or text length other than the export fixes is refused, naming the size it needs', { skip: needsFixture() }, async () => {
  const dir = variantFolder(withStaticShapes(reference(), { batch: 2 }));
  await assert.rejects(createOnnxPolicy(dir, epochConfig({ latent_size: 8 })), /exported for 16x16 latents only, but latent_size is 8; set "latent_size": 16/);
  const short = variantFolder(withStaticShapes(reference(), { batch: 2, sequence: 64 }));
  await assert.rejects(createOnnxPolicy(short, epochConfig()), /takes text embeddings of 64 tokens, but the tokenizer and text encoder give 77/);
  const pipe = await StableDiffusionPipeline.load(dir);
  try {
    await assert.rejects(sampleDdim(pipe, { prompt: 'a cat', count: 1, seed: 0, steps: 1, guidance: 5, eta: 1, latentHeight: 8, latentWidth: 8 }), /is exported for 16x16 latents only \(128x128 px with an SD VAE\), but 8x8 were asked for/);
    const r = await sampleDdim(pipe, { prompt: 'a cat', count: 3, seed: 0, steps: 1, guidance: 5, eta: 1 });
    assert.deepEqual([r.latentHeight, r.latentWidth, r.trajectory[1].length], [16, 16, 3 * 4 * 16 * 16], 'the fixed size is the default; 3 images run in padded chunks of 2');
  } finally { await pipe.release(); }
});

test('a 0-d tensor reads back from safetensors as one value with shape []', () => {
  const file = join(fs.mkdtempSync(join(os.tmpdir(), 'st0d-')), 'scalar.safetensors');
  writeSafetensors(file, { t: { dtype: 'F32', shape: [], data: new Float32Array([801]) }, v: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });
  const back = readSafetensors(file);
  assert.deepEqual(back.get('t')!.shape, []);
  assert.deepEqual(Array.from(toFloat32(back.get('t')!)), [801]);
  assert.deepEqual(Array.from(toFloat32(back.get('v')!)), [1, 2]);
});

test('DDPO refuses a deterministic sampler (eta 0), where a step has no log-probability to train on', () => {
  const schedule = makeDdimSchedule(parseDdimConfig({}));
  assert.throws(() => ddpoScheduleFeeds(schedule, [801], 20, 0), /eta must be > 0 \(got 0\)/);
  assert.ok(ddpoScheduleFeeds(schedule, [801], 20, 1).alpha_prod_t.data[0] > 0);
});
