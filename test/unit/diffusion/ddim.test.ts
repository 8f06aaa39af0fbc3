import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ddimCoefficients, ddimStepWithLogProb, ddimTimesteps, makeDdimSchedule, parseDdimConfig } from '../../../src/core/diffusion/ddim';

const sd15 = parseDdimConfig({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, steps_offset: 1, set_alpha_to_one: false, clip_sample: false });
const schedule = makeDdimSchedule(sd15);

test('timesteps follow diffusers DDIM spacing (leading, trailing, linspace)', () => {
  assert.deepEqual(ddimTimesteps(sd15, 10), [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
  assert.deepEqual(ddimTimesteps(sd15, 3), [667, 334, 1]);
  assert.deepEqual(ddimTimesteps({ ...sd15, timestepSpacing: 'trailing' }, 4), [999, 749, 499, 249]);
  assert.deepEqual(ddimTimesteps({ ...sd15, timestepSpacing: 'linspace' }, 4), [999, 666, 333, 0]);
  // a timestep that falls on a half rounds to even, as numpy's round in diffusers' set_timesteps does (values from
  // numpy: linspace(0, 999, 7).round() and round(arange(1000, 0, -62.5)) - 1)
  assert.deepEqual(ddimTimesteps({ ...sd15, timestepSpacing: 'linspace' }, 7), [999, 832, 666, 500, 333, 166, 0]);
  assert.deepEqual(ddimTimesteps({ ...sd15, timestepSpacing: 'trailing' }, 16), [999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61]);
  assert.throws(() => ddimTimesteps(sd15, 0), /steps must be/);
});

test('the SD schedule has diffusers values and the last step goes to alphā_0 without set_alpha_to_one', () => {
  assert.ok(Math.abs(schedule.alphasCumprod[0] - 0.99915) < 1e-7);
  assert.ok(Math.abs(schedule.alphasCumprod[999] - 0.0046) < 1e-4);
  assert.equal(ddimCoefficients(schedule, 1, 10, 1).alphaProdTPrev, schedule.alphasCumprod[0]);
  assert.equal(makeDdimSchedule({ ...sd15, setAlphaToOne: true }).finalAlphaCumprod, 1);
});

test('unsupported scheduler settings are refused with the field name', () => {
  assert.throws(() => parseDdimConfig({ beta_schedule: 'squaredcos_cap_v2' }), /beta_schedule 'squaredcos_cap_v2'/);
  assert.throws(() => parseDdimConfig({ thresholding: true }), /thresholding/);
});

function randomish(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 1.3);
}

test('the step is mean + std·noise and its log-prob is the Gaussian density averaged over C·H·W', () => {
  const n = 2 * 16;
  const sample = randomish(n, 1), eps = randomish(n, 2), noise = randomish(n, 3);
  const c = ddimCoefficients(schedule, 801, 20, 1);
  const r = ddimStepWithLogProb({ sample, modelOutput: eps, batch: 2, coefficients: c, noise });
  const sa = Math.sqrt(c.alphaProdT), sb = Math.sqrt(1 - c.alphaProdT);
  for (let i = 0; i < n; i++) {
    const x0 = (sample[i] - sb * eps[i]) / sa;
    const mean = Math.sqrt(c.alphaProdTPrev) * x0 + Math.sqrt(1 - c.alphaProdTPrev - c.stdDevT ** 2) * eps[i];
    assert.ok(Math.abs(r.prevSampleMean[i] - mean) < 1e-5);
    assert.ok(Math.abs(r.prevSample[i] - (mean + c.stdDevT * noise[i])) < 1e-5);
  }
  for (let b = 0; b < 2; b++) {
    let lp = 0;
    for (let i = b * 16; i < (b + 1) * 16; i++) lp += -0.5 * noise[i] ** 2 - Math.log(c.stdDevT) - 0.5 * Math.log(2 * Math.PI);
    assert.ok(Math.abs(r.logProb[b] - lp / 16) < 1e-4, `batch ${b}: ${r.logProb[b]} vs ${lp / 16}`);
  }
  // Scoring the produced sample again (as DDPO training does) gives the same log-prob.
  const again = ddimStepWithLogProb({ sample, modelOutput: eps, batch: 2, coefficients: c, prevSample: r.prevSample });
  assert.deepEqual(again.prevSample, r.prevSample);
  for (let b = 0; b < 2; b++) assert.ok(Math.abs(again.logProb[b] - r.logProb[b]) < 1e-9);
});

test('eta 0 is deterministic (no noise needed) and has no log-prob', () => {
  const sample = randomish(8, 1), eps = randomish(8, 2);
  const r = ddimStepWithLogProb({ sample, modelOutput: eps, batch: 1, coefficients: ddimCoefficients(schedule, 501, 10, 0) });
  assert.equal(r.stdDevT, 0);
  assert.deepEqual(r.prevSample, r.prevSampleMean);
  assert.ok(Number.isNaN(r.logProb[0]));
  assert.throws(() => ddimStepWithLogProb({ sample, modelOutput: eps, batch: 1, coefficients: ddimCoefficients(schedule, 501, 10, 1) }), /pass noise or prevSample/);
});

test('v-prediction and epsilon-prediction of the same state give the same step', () => {
  const sample = randomish(8, 4), eps = randomish(8, 5), noise = randomish(8, 6);
  const c = ddimCoefficients(schedule, 601, 10, 0.5);
  const sa = Math.sqrt(c.alphaProdT), sb = Math.sqrt(1 - c.alphaProdT);
  const x0 = sample.map((x, i) => (x - sb * eps[i]) / sa);
  const v = eps.map((e, i) => sa * e - sb * x0[i]);
  const a = ddimStepWithLogProb({ sample, modelOutput: eps, batch: 1, coefficients: c, noise });
  const b = ddimStepWithLogProb({ sample, modelOutput: v, batch: 1, coefficients: c, noise, predictionType: 'v_prediction' });
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(a.prevSample[i] - b.prevSample[i]) < 1e-5);
});

test('eta scales the noise linearly: eta 0.5 adds half the noise of eta 1 (diffusers: std = eta·√variance)', () => {
  const sample = randomish(8, 7), eps = randomish(8, 8), noise = randomish(8, 9);
  const full = ddimCoefficients(schedule, 501, 10, 1), half = ddimCoefficients(schedule, 501, 10, 0.5);
  assert.ok(Math.abs(half.stdDevT - 0.5 * full.stdDevT) < 1e-12, `${half.stdDevT} vs ${full.stdDevT}`);
  const r = ddimStepWithLogProb({ sample, modelOutput: eps, batch: 1, coefficients: half, noise });
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(r.prevSample[i] - r.prevSampleMean[i] - 0.5 * full.stdDevT * noise[i]) < 1e-5);
});

test('a step that lands on timestep 0 goes to alphā_0; only a step past 0 takes the final alphā (set_alpha_to_one)', () => {
  // leading spacing without steps_offset ends on timestep 0, so the step from 100 lands exactly on it
  const cfg = parseDdimConfig({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, set_alpha_to_one: true });
  const s = makeDdimSchedule(cfg);
  assert.deepEqual(ddimTimesteps(cfg, 10).slice(-2), [100, 0]);
  assert.equal(ddimCoefficients(s, 100, 10, 1).alphaProdTPrev, s.alphasCumprod[0]);
  assert.equal(ddimCoefficients(s, 0, 10, 1).alphaProdTPrev, 1);
});

test('settings a scheduler config leaves out take diffusers DDIMScheduler\'s defaults', () => {
  assert.deepEqual(parseDdimConfig({}), {
    numTrainTimesteps: 1000, betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear', setAlphaToOne: true, stepsOffset: 0,
    predictionType: 'epsilon', timestepSpacing: 'leading', clipSample: true, clipSampleRange: 1,
  });
});

test('clip_sample clamps the predicted x₀ to ±range, and the step is taken from the clamped x₀', () => {
  const c = ddimCoefficients(schedule, 901, 10, 0);
  const sample = Float32Array.from([3, -3, 0.1]), eps = Float32Array.from([-2, 2, 0]);
  const r = ddimStepWithLogProb({ sample, modelOutput: eps, batch: 1, coefficients: c, clipSampleRange: 1 });
  const sa = Math.sqrt(c.alphaProdT), dir = Math.sqrt(1 - c.alphaProdTPrev);
  assert.deepEqual(Array.from(r.predOriginalSample.subarray(0, 2)), [1, -1]);
  assert.ok(Math.abs(r.predOriginalSample[2] - 0.1 / sa) < 1e-5);
  assert.ok(Math.abs(r.prevSample[0] - (Math.sqrt(c.alphaProdTPrev) * 1 + dir * -2)) < 1e-5);
});
