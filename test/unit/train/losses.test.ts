import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, emptyGraph, makeModel } from '../../../src/core/onnx/ir';
import { specialize } from '../../../src/core/onnx/specialize';
import { buildGradientGraph } from '../../../src/core/autodiff/gradient';
import { ddimStepWithLogProb } from '../../../src/core/diffusion/ddim';
import { appendBradleyTerryLoss, appendDdpoLoss } from '../../../src/core/train/losses';
import { createSession, runModel } from '../../../src/core/runtime/ortRun';
import { appendMseLoss, randomValues } from './tinyModels';

const B = 2, CHW = [2, 2, 3], N = 12;
const PPO = { clipRange: 0.05, advClipMax: 1 };

function ddpoGraph(withGrad: boolean) {
  const g = emptyGraph('ddpo');
  const b = new GraphBuilder(g);
  const f = (name: string, shape: number[]) => b.input(name, DataType.FLOAT, shape);
  const v = {
    eps: f('eps', [2 * B, ...CHW]), latents: f('latents', [B, ...CHW]), nextLatents: f('next_latents', [B, ...CHW]),
    alphaProdT: f('alpha_prod_t', [B]), alphaProdTPrev: f('alpha_prod_t_prev', [B]), eta: f('eta', []), guidanceScale: f('guidance_scale', []),
    oldLogProb: f('old_log_prob', [B]), advantages: f('advantages', [B]), clipRange: f('clip_range', []),
  };
  const r = appendDdpoLoss(b, v, PPO, 17);
  b.output(r.loss, 'loss', DataType.FLOAT, []);
  for (const [k, n] of [['log_prob', r.logProb], ['ratio', r.ratio], ['approx_kl', r.approxKl], ['clipfrac', r.clipFrac]]) b.output(n, k);
  const model = makeModel(g, 17);
  if (!withGrad) return model;
  const s = specialize(model, {});
  return buildGradientGraph(s.model, { shapes: s.shapes, wrt: ['eps'], loss: 'loss', keepForwardOutputs: true }).model;
}

const coef = { alphaProdT: 0.3, alphaProdTPrev: 0.45 };
const eps = randomValues(2 * B * N, 1), latents = randomValues(B * N, 2), next = randomValues(B * N, 3);
const g = 3;
const guided = Float32Array.from({ length: B * N }, (_, i) => eps[i] + g * (eps[B * N + i] - eps[i]));
const variance = ((1 - coef.alphaProdTPrev) / (1 - coef.alphaProdT)) * (1 - coef.alphaProdT / coef.alphaProdTPrev);
const ref = ddimStepWithLogProb({ sample: latents, modelOutput: guided, batch: B, coefficients: { ...coef, variance, stdDevT: Math.sqrt(variance) }, prevSample: next });
// sample 0: ratio e^0.2 is far outside 1±0.05 and A>0, so it is clipped; sample 1: ratio e^-0.01, inside
const oldLogProb = [ref.logProb[0] - 0.2, ref.logProb[1] + 0.01];
const advantages = [3, -0.5];
const feeds = {
  eps: { dims: [2 * B, ...CHW], data: eps }, latents: { dims: [B, ...CHW], data: latents }, next_latents: { dims: [B, ...CHW], data: next },
  alpha_prod_t: { dims: [B], data: [coef.alphaProdT, coef.alphaProdT] }, alpha_prod_t_prev: { dims: [B], data: [coef.alphaProdTPrev, coef.alphaProdTPrev] },
  eta: { dims: [], data: [1] }, guidance_scale: { dims: [], data: [g] }, old_log_prob: { dims: [B], data: oldLogProb }, advantages: { dims: [B], data: advantages },
  clip_range: { dims: [], data: [PPO.clipRange] },
};

test('DDPO subgraph: log-prob matches the TypeScript DDIM step; PPO loss, approx-KL and clip fraction as in ddpo-pytorch', async () => {
  const model = ddpoGraph(false);
  const out = await runModel(await createSession(model), model, feeds);
  const lp = out.get('log_prob')!.data;
  for (let i = 0; i < B; i++) assert.ok(Math.abs(lp[i] - ref.logProb[i]) < 1e-4 * Math.abs(ref.logProb[i]), `log_prob[${i}] ${lp[i]} vs ${ref.logProb[i]}`);
  const ratio = [Math.exp(0.2), Math.exp(-0.01)];
  const adv = [1, -0.5]; // clipped to adv_clip_max
  const per = ratio.map((r, i) => Math.max(-adv[i] * r, -adv[i] * Math.min(1 + PPO.clipRange, Math.max(1 - PPO.clipRange, r))));
  assert.ok(Math.abs(out.get('loss')!.data[0] - (per[0] + per[1]) / 2) < 1e-5);
  assert.ok(Math.abs(out.get('approx_kl')!.data[0] - 0.5 * (0.04 + 0.0001) / 2) < 1e-5);
  assert.equal(out.get('clipfrac')!.data[0], 0.5);
});

test('DDPO gradient is zero for the clipped sample and flows for the other', async () => {
  const model = ddpoGraph(true);
  const out = await runModel(await createSession(model), model, feeds);
  const ge = out.get('eps_grad')!.data;
  const part = (half: number, s: number) => ge.subarray(half * B * N + s * N, half * B * N + (s + 1) * N);
  for (const half of [0, 1]) {
    assert.ok(part(half, 0).every((v) => v === 0), 'clipped sample 0 must have no gradient');
    assert.ok(part(half, 1).some((v) => Math.abs(v) > 1e-6), 'sample 1 must have a gradient');
  }
});

function btGraph() {
  const gr = emptyGraph('bt');
  const b = new GraphBuilder(gr);
  const l = b.input('left', DataType.FLOAT, [3]), r = b.input('right', DataType.FLOAT, [3]), y = b.input('y', DataType.FLOAT, [3]);
  const res = appendBradleyTerryLoss(b, l, r, y, 17);
  b.output(res.loss, 'loss', DataType.FLOAT, []);
  b.output(res.accuracy, 'accuracy', DataType.FLOAT, []);
  b.output(appendMseLoss(b, l, r, 17), 'mse', DataType.FLOAT, []);
  const s = specialize(makeModel(gr, 17), {});
  return buildGradientGraph(s.model, { shapes: s.shapes, wrt: ['left'], loss: 'loss', keepForwardOutputs: true }).model;
}

test('Bradley–Terry counts a tie as half a win; its gradient is (σ(d) − y)/N; MSE is the mean square', async () => {
  const left = [2, -1, 0.3], right = [0, 0, 0.3], y = [1, 0, 0.5];
  const model = btGraph();
  const out = await runModel(await createSession(model), model, { left: { dims: [3], data: left }, right: { dims: [3], data: right }, y: { dims: [3], data: y } });
  const sig = (z: number) => 1 / (1 + Math.exp(-z));
  const d = left.map((v, i) => v - right[i]);
  const want = d.reduce((s, di, i) => s - (y[i] * Math.log(sig(di)) + (1 - y[i]) * Math.log(sig(-di))), 0) / 3;
  assert.ok(Math.abs(out.get('loss')!.data[0] - want) < 1e-6);
  assert.ok(Math.abs(out.get('accuracy')!.data[0] - (1 + 1 + 0.5) / 3) < 1e-6);
  const grad = out.get('left_grad')!.data;
  d.forEach((di, i) => assert.ok(Math.abs(grad[i] - (sig(di) - y[i]) / 3) < 1e-6, `grad[${i}]`));
  assert.ok(Math.abs(out.get('mse')!.data[0] - (4 + 1 + 0) / 3) < 1e-6);
});
