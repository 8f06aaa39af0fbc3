import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../../src/core/onnx/proto';
import { buildDdimStepGraph, ddimGraphCoefficients } from '../../../src/core/diffusion/ddimGraph';
import { ddimCoefficients, ddimStepWithLogProb, makeDdimSchedule, parseDdimConfig } from '../../../src/core/diffusion/ddim';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { sampleDdim } from '../../../src/core/diffusion/sampler';
import { needsFixture, referenceSd } from '../fixtures';

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0, err = 0;
  for (let i = 0; i < a.length; i++) { scale = Math.max(scale, Math.abs(b[i])); err = Math.max(err, Math.abs(a[i] - b[i])); }
  return err / Math.max(scale, 1e-12);
}

const schedule = makeDdimSchedule(parseDdimConfig({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, steps_offset: 1, set_alpha_to_one: false }));

for (const [predictionType, clip] of [['epsilon', undefined], ['v_prediction', 1]] as const) {
  test(`one graph step (${predictionType}${clip ? ', clipped x0' : ''}, CFG) matches the TypeScript DDIM step and log-prob`, async () => {
    const [B, C, H, W] = [2, 4, 8, 8];
    const n = B * C * H * W;
    const g = new GaussianRng(7);
    const x = g.fill(new Float32Array(n)), out = g.fill(new Float32Array(2 * n)), noise = g.fill(new Float32Array(n));
    const c = ddimCoefficients(schedule, 801, 20, 1);
    const guided = new Float32Array(n).map((_, i) => out[i] + 7.5 * (out[n + i] - out[i]));
    const ref = ddimStepWithLogProb({ sample: x, modelOutput: guided, batch: B, coefficients: c, noise, predictionType, clipSampleRange: clip });
    const s = await ort.InferenceSession.create(encodeModel(buildDdimStepGraph({ batch: B, channels: C, height: H, width: W, cfg: true, predictionType, clipSampleRange: clip })));
    const r = await s.run({
      sample: new ort.Tensor('float32', x, [B, C, H, W]), model_output: new ort.Tensor('float32', out, [2 * B, C, H, W]),
      noise: new ort.Tensor('float32', noise, [B, C, H, W]), coefficients: new ort.Tensor('float32', ddimGraphCoefficients(c, 7.5), [8]),
    });
    assert.ok(maxRelErr(r.prev_sample.data as Float32Array, ref.prevSample) < 1e-5);
    assert.ok(maxRelErr(r.log_prob.data as Float32Array, ref.logProb) < 1e-5, `log_prob ${r.log_prob.data} vs ${ref.logProb}`);
    const next = r.next_model_input.data as Float32Array;
    assert.deepEqual(next.subarray(0, n), r.prev_sample.data);
    assert.deepEqual(next.subarray(n), r.prev_sample.data);
    await s.release();
  });
}

let pipe: StableDiffusionPipeline;
before(async () => { if (!needsFixture()) pipe = await StableDiffusionPipeline.load(referenceSd); });
after(async () => { await pipe?.release(); });

for (const guidance of [7.5, 1]) {
  test(`the graph sampler gives the host sampler's trajectory and log-probs on the reference UNet (guidance ${guidance})`, { skip: needsFixture() }, async () => {
    const req = { prompt: 'a photo of a cat', count: 2, seed: 11, steps: 10, guidance, eta: 1, latentHeight: 16, latentWidth: 16 };
    const host = await sampleDdim(pipe, req);
    const graph = await sampleDdim(pipe, { ...req, engine: 'graph' });
    assert.equal(graph.trajectory.length, 11);
    assert.deepEqual(graph.trajectory[0], host.trajectory[0]);
    graph.trajectory.forEach((x, i) => assert.ok(maxRelErr(x, host.trajectory[i]) < 1e-5, `trajectory[${i}] rel err ${maxRelErr(x, host.trajectory[i])}`));
    graph.logProbs.forEach((lp, i) => assert.ok(maxRelErr(lp, host.logProbs[i]) < 1e-5, `logProbs[${i}] ${lp} vs ${host.logProbs[i]}`));
    assert.deepEqual(graph.rngStates, host.rngStates);
  });
}
