// Diffusion-DPO's training graph on the reference fixture against the float64 oracle of the formula (dpoOracle.ts,
// itself checked by finite differences): loss, margins and the two mean squared errors from the UNet's own predictions
// with and without the LoRA, and the LoRA gradients against the UNet's vector-Jacobian product with R = dL/dpred.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { noisedRows } from '../../../src/core/ddpo/dpoPolicy';
import { maxRelError } from '../../../src/core/diffusion/conformance';
import { ddimStepWithLogProb, makeDdimSchedule, parseDdimConfig } from '../../../src/core/diffusion/ddim';
import { predictInChunks, unetFeeds } from '../../../src/core/diffusion/fastUnet';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import { unetRoles } from '../../../src/core/diffusion/unetRoles';
import type { Model } from '../../../src/core/onnx/ir';
import { loadModel } from '../../../src/core/onnx/proto';
import { createSession } from '../../../src/core/runtime/ortRun';
import { readSafetensors, toFloat32 } from '../../../src/core/safetensors';
import { mergeLora } from '../../../src/core/train/lora';
import { readLora } from '../../../src/core/train/loraFile';
import { diffusionDpoInputShapes, diffusionDpoObjective, dotObjective } from '../../../src/core/train/objective';
import { TrainingSession } from '../../../src/core/train/session';
import { needsFixture, referenceSd } from '../fixtures';
import { diffusionDpoOracle } from './dpoOracle';

const gaussian = (seed: number, n: number) => new GaussianRng(seed).fill(new Float32Array(n));

test('the float64 oracle: its gradient matches central finite differences of its loss, and its margin prefers the image the policy fits better', () => {
  const pairs = 3, per = 10, n = 2 * pairs * per;
  const pred = Float64Array.from(gaussian(1, n)), ref = gaussian(2, n), target = gaussian(3, n);
  const beta = 0.8;
  const o = diffusionDpoOracle(pred, ref, target, beta, pairs);
  assert.ok(o.margins.some((m) => Math.abs(m) > 0.1), 'margins away from 0, where the loss is curved');
  const h = 1e-5;
  for (const i of [0, 7, per + 3, pairs * per, pairs * per + 11, n - 1]) {
    const up = Float64Array.from(pred), down = Float64Array.from(pred);
    up[i] += h; down[i] -= h;
    const fd = (diffusionDpoOracle(up, ref, target, beta, pairs).loss - diffusionDpoOracle(down, ref, target, beta, pairs).loss) / (2 * h);
    assert.ok(Math.abs(fd - o.gradPred[i]) <= 1e-7 + 1e-6 * Math.abs(fd), `dL/dpred[${i}]: finite differences ${fd}, oracle ${o.gradPred[i]}`);
  }
  // the policy predicts the preferred image's target exactly and the rejected one as the reference does: margin > 0
  const better = Float64Array.from(ref);
  for (let i = 0; i < pairs * per; i++) better[i] = target[i];
  const m = diffusionDpoOracle(better, ref, target, beta, pairs);
  assert.ok(m.margins.every((x) => x > 0), `margins ${m.margins}`);
  assert.ok(m.loss < Math.log(2), 'a positive margin has a loss below log 2');
  assert.ok(diffusionDpoOracle(ref, ref, target, beta, pairs).margins.every((x) => x === 0), 'the reference itself has margin 0');
});

test('the training rows: both images of a pair share t and noise, and the target read back by the sampler\'s own step is the clean latent, for ε, v and x₀ prediction', () => {
  const schedule = makeDdimSchedule(parseDdimConfig({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000, set_alpha_to_one: false, steps_offset: 1, clip_sample: false }));
  const per = 12;
  const batch = { prompts: ['a', 'b'], winners: [gaussian(1, per), gaussian(2, per)], losers: [gaussian(3, per), gaussian(4, per)], timesteps: [50, 900], noise: [gaussian(5, per), gaussian(6, per)] };
  for (const kind of ['epsilon', 'v_prediction', 'sample'] as const) {
    const rows = noisedRows(batch, schedule.alphasCumprod, kind);
    assert.deepEqual(rows.timesteps, [50, 900, 50, 900]);
    assert.deepEqual(rows.prompts, ['a', 'b', 'a', 'b']);
    const x0s = [...batch.winners, ...batch.losers];
    for (let r = 0; r < 4; r++) {
      const a = schedule.alphasCumprod[rows.timesteps[r]];
      const x = rows.noisy.subarray(r * per, (r + 1) * per), out = rows.target.subarray(r * per, (r + 1) * per);
      const step = ddimStepWithLogProb({ sample: x, modelOutput: out, batch: 1, predictionType: kind, coefficients: { alphaProdT: a, alphaProdTPrev: a, variance: 0, stdDevT: 0 } });
      assert.ok(maxRelError(step.predOriginalSample, x0s[r]) < 1e-4, `${kind}, row ${r}: x̂₀ from the target is the clean latent`);
      // the noise is the pair's: x_t − √ᾱ·x₀ = √(1−ᾱ)·ε
      const eps = batch.noise[r % 2];
      for (let i = 0; i < per; i++) assert.ok(Math.abs(x[i] - Math.sqrt(a) * x0s[r][i] - Math.sqrt(1 - a) * eps[i]) < 1e-5);
    }
  }
});

test('fixture UNet: the Diffusion-DPO graph\'s loss, margins, MSEs and LoRA gradients match the float64 oracle; the reference is the UNet without its LoRA', { skip: needsFixture() }, async () => {
  const model = loadModel(join(referenceSd, 'unet/model.onnx'));
  const weights = readLora(join(referenceSd, 'unet/lora_peft.safetensors'));
  const targets: string[] = JSON.parse(readFileSync(join(referenceSd, 'unet/oracle.json'), 'utf8')).lora.targets;
  const lora = { rank: weights.rank, alpha: weights.alpha, targets };
  const ehs1 = readEhs();
  const pairs = 2, rows = 2 * pairs, latent = [4, 16, 16], per = 4 * 16 * 16;
  const noisy = gaussian(11, rows * per), target = gaussian(12, rows * per);
  const timesteps = [801, 251, 801, 251];
  const context = { data: new Float32Array([...ehs1.rows[0], ...ehs1.rows[1], ...ehs1.rows[0], ...ehs1.rows[1]]), batch: rows, sequence: ehs1.sequence, dim: ehs1.dim };
  const forward = async (m: Model) => {
    const session = await createSession(m);
    try { return await predictInChunks({ session, model: m, roles: unetRoles(m) }, noisy, rows, 16, 16, timesteps, context); } finally { await session.release(); }
  };
  const pred = await forward(mergeLora(model, weights, { targets }));
  const base = await forward(model);
  // β that puts the margins near ±1, where the loss and its gradient are far from saturation
  const unit = diffusionDpoOracle(pred, base, target, 1, pairs);
  const beta = 1 / Math.max(...unit.margins.map(Math.abs));
  const oracle = diffusionDpoOracle(pred, base, target, beta, pairs);

  const dpo = await TrainingSession.create(model, { lora, weights, objective: diffusionDpoObjective, inputShapes: diffusionDpoInputShapes(pairs, latent, [ehs1.sequence, ehs1.dim], false) });
  const vjp = await TrainingSession.create(model, {
    lora, weights, objective: (m) => dotObjective(m, 'vjp_weights'),
    inputShapes: { sample: [rows, ...latent], timestep: [rows], encoder_hidden_states: [rows, ehs1.sequence, ehs1.dim], vjp_weights: [rows, ...latent] },
  });
  try {
    const feeds = {
      noisy_latents: { dims: [rows, ...latent], data: noisy }, target: { dims: [rows, ...latent], data: target }, timestep: { dims: [rows], data: timesteps },
      cond_embeds: { dims: [rows, ehs1.sequence, ehs1.dim], data: context.data }, beta_dpo: { dims: [], data: [beta] },
    };
    const r = await dpo.step(feeds);
    assert.ok(maxRelError([r.loss], [oracle.loss]) < 1e-4, `loss ${r.loss} vs oracle ${oracle.loss}`);
    assert.ok(maxRelError(r.metrics.get('margin')!, oracle.margins) < 1e-3, `margins ${[...r.metrics.get('margin')!]} vs oracle ${oracle.margins}`);
    assert.ok(maxRelError(r.metrics.get('model_mse')!, [oracle.modelMse]) < 1e-4);
    assert.ok(maxRelError(r.metrics.get('ref_mse')!, [oracle.refMse]) < 1e-4, 'the reference rows are the base UNet\'s');
    assert.ok(Math.abs(oracle.modelMse - oracle.refMse) > 1e-4 * oracle.refMse, 'the fixture LoRA moves the prediction, so the check tells policy from reference');
    assert.equal(r.metrics.get('implicit_acc')![0], oracle.margins.filter((m) => m > 0).length / pairs);

    const v = await vjp.step(new Map([...unetFeeds(unetRoles(model), noisy, rows, 16, 16, timesteps, context), ['vjp_weights', { dims: [rows, ...latent], data: Float32Array.from(oracle.gradPred) }]]));
    assert.ok(Math.abs(v.loss) > 0);
    assert.equal(r.grads.size, weights.modules.size * 2);
    let worst = 0, at = '';
    for (const [k, g] of r.grads) {
      const e = maxRelError(g, v.grads.get(k)!);
      if (e > worst) { worst = e; at = k; }
    }
    assert.ok(worst < 1e-3, `LoRA gradients: worst relative error ${worst.toExponential(2)} at ${at}`);

    // with the LoRA at zero the policy is the reference: every margin 0, loss log 2
    for (const p of dpo.params().values()) p.fill(0);
    const zero = await dpo.step(feeds);
    // (float32 rounding of the two copies' sums, times β, is all that is left)
    const zm = [...zero.metrics.get('margin')!];
    assert.ok(Math.abs(zero.loss - Math.log(2)) < 1e-4, `loss ${zero.loss}`);
    assert.ok(zm.every((m) => Math.abs(m) < 1e-3), `margins ${zm}`);
    assert.ok(maxRelError(zero.metrics.get('ref_mse')!, [oracle.refMse]) < 1e-4, 'the reference does not follow the LoRA');
  } finally {
    await Promise.all([dpo.release(), vjp.release()]);
  }
});

// The fixture's two text embeddings, one per row.
function readEhs(): { rows: Float32Array[]; sequence: number; dim: number } {
  const t = readSafetensors(join(referenceSd, 'unet/oracle.safetensors')).get('fwd.encoder_hidden_states')!;
  const [B, sequence, dim] = t.shape;
  const data = toFloat32(t);
  return { rows: Array.from({ length: B }, (_, b) => data.slice(b * sequence * dim, (b + 1) * sequence * dim)), sequence, dim };
}
