import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { A, GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, emptyGraph, makeModel, makeTensor, Model, topoSort } from '../../../src/core/onnx/ir';
import { encodeModel, loadModel } from '../../../src/core/onnx/proto';
import { specialize } from '../../../src/core/onnx/specialize';
import { readSafetensors, toFloat32 } from '../../../src/core/safetensors';
import { toFloat16 } from '../../../src/core/onnx/fp16';
import { buildGradientGraph } from '../../../src/core/autodiff/gradient';
import { ortShapes } from '../autodiff/ortRun';
import { needsFixture, referenceSd } from '../fixtures';

async function run(model: Model, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
  try { return await s.run(feeds); } finally { await s.release(); }
}

function relErr(y: Float32Array, ref: Float32Array): number {
  let e = 0, sc = 0;
  for (let i = 0; i < y.length; i++) { e = Math.max(e, Math.abs(y[i] - ref[i])); sc = Math.max(sc, Math.abs(ref[i])); }
  return e / sc;
}

test('the fixture UNet in float16 stays within 1e-2 of the PyTorch oracle, with float32 inputs and output', { skip: needsFixture() }, async () => {
  const unet = loadModel(join(referenceSd, 'unet/model.onnx'));
  const o = readSafetensors(join(referenceSd, 'unet/oracle.safetensors'));
  const t = (k: string) => o.get(`fwd.${k}`)!;
  const feeds = {
    sample: new ort.Tensor('float32', toFloat32(t('sample')), t('sample').shape),
    timestep: new ort.Tensor('int64', BigInt64Array.from(toFloat32(t('timestep')), (v) => BigInt(v)), t('timestep').shape),
    encoder_hidden_states: new ort.Tensor('float32', toFloat32(t('encoder_hidden_states')), t('encoder_hidden_states').shape),
  };
  const ref = toFloat32(t('out_sample'));
  for (const [label, model] of [['exported', unet], ['specialized', specialize(unet, { inputShapes: { sample: t('sample').shape, timestep: [2], encoder_hidden_states: t('encoder_hidden_states').shape } }).model]] as const) {
    const { model: half, report } = toFloat16(model);
    assert.ok(report.initializersConverted > 100, label);
    assert.deepEqual(half.graph.inputs.map((v) => v.elemType), [DataType.FLOAT, DataType.INT64, DataType.FLOAT]);
    const y = (await run(half, feeds)).out_sample;
    assert.equal(y.type, 'float32');
    const err = relErr(y.data as Float32Array, ref);
    // float16 rounding shows (the float32 model is within 1e-6), but stays far below 1e-2
    assert.ok(err < 1e-2 && err > 1e-5, `${label}: max rel err ${err}`);
  }
});

test('an integer timestep feeding sin/cos keeps its arithmetic in float32 until the first MatMul', async () => {
  // emb = sin(float(t) · 1.3) @ W: in float16, 981·1.3 would round by 0.5 rad; float32 keeps it exact enough
  const g = emptyGraph('temb');
  const b = new GraphBuilder(g);
  b.input('t', DataType.INT64, [1]);
  const tf = b.op('Cast', ['t'], { to: A.i(DataType.FLOAT) });
  const s = b.op('Sin', [b.op('Mul', [b.op('Unsqueeze', [tf, b.constI64([1])]), b.constF([1.3, 0.7])])]);
  const w = b.initializer(makeTensor('w', DataType.FLOAT, [2, 2], [1, 0, 0, 1]), true);
  b.output(b.op('MatMul', [s, w]), 'emb', DataType.FLOAT, [1, 2]);
  const { model, report } = toFloat16(makeModel(g, 17));
  assert.equal(report.fp32Nodes, 4); // Cast, Unsqueeze, Mul, Sin
  const matmul = model.graph.nodes.find((n) => n.opType === 'MatMul')!;
  assert.equal(model.graph.initializers.get(matmul.inputs[1])!.dataType, DataType.FLOAT16);
  const y = (await run(model, { t: new ort.Tensor('int64', BigInt64Array.of(981n), [1]) })).emb.data as Float32Array;
  const expect = [Math.sin(981 * Math.fround(1.3)), Math.sin(981 * Math.fround(0.7))];
  y.forEach((v, i) => assert.ok(Math.abs(v - expect[i]) < 2e-3, `emb[${i}] = ${v}, expected ${expect[i]}`));
});

test('normalisations run in float32 and a shared weight gets a float32 copy next to its float16 one', async () => {
  const g = emptyGraph('norm');
  const b = new GraphBuilder(g);
  b.input('x', DataType.FLOAT, [1, 4]);
  const gamma = b.initializer(makeTensor('gamma', DataType.FLOAT, [4], [1, 2, 3, 4]), true);
  const ln = b.op('LayerNormalization', ['x', gamma], { axis: A.i(-1) });
  b.output(b.op('Mul', [ln, gamma]), 'y', DataType.FLOAT, [1, 4]);
  const { model } = toFloat16(makeModel(g, 17));
  const norm = model.graph.nodes.find((n) => n.opType === 'LayerNormalization')!;
  assert.equal(model.graph.initializers.get(norm.inputs[1])!.dataType, DataType.FLOAT);
  assert.equal(model.graph.initializers.get('gamma')!.dataType, DataType.FLOAT16);
  const y = (await run(model, { x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 40000), [1, 4]) })).y.data as Float32Array;
  // 40000² overflows float16; in float32 the normalised values are finite
  assert.ok(y.every(Number.isFinite), `y = ${y}`);
});

/** Values a float16 model computes in float16: float16 constants and inputs, Cast-to-float16 outputs, and what nodes make of them. */
function halfValues(model: Model): Set<string> {
  const g = model.graph;
  const half = new Set([...g.inputs.filter((v) => v.elemType === DataType.FLOAT16).map((v) => v.name),
    ...[...g.initializers].filter(([, t]) => t.dataType === DataType.FLOAT16).map(([k]) => k)]);
  for (const n of topoSort(g)) {
    const to = n.attrs.to?.type === 'int' ? n.attrs.to.value : undefined;
    if (n.opType === 'Cast' ? to === DataType.FLOAT16 : n.opType !== 'Shape' && n.inputs.some((v) => half.has(v))) n.outputs.forEach((o) => half.add(o));
  }
  return half;
}

// onnxruntime's CPU accumulates these ops in float32 whatever their type, so no overflow shows here; the checks are on
// the precision each node is given, which a GPU's float16 kernels use and overflow in.
test('GroupNormalization and InstanceNormalization compute in float32 like LayerNormalization', () => {
  for (const [op, opset, attrs] of [['InstanceNormalization', 17, {}], ['GroupNormalization', 21, { num_groups: A.i(2) }]] as const) {
    const g = emptyGraph('norm');
    const b = new GraphBuilder(g);
    b.input('x', DataType.FLOAT, [1, 4, 2, 2]);
    b.output(b.op(op, ['x', b.constF([1, 2, 3, 4]), b.constF([0, 0, 0, 0])], attrs), 'y', DataType.FLOAT, [1, 4, 2, 2]);
    const { model } = toFloat16(makeModel(g, opset));
    const half = halfValues(model);
    const norm = model.graph.nodes.find((n) => n.opType === op)!;
    // the variance of a VAE decoder's feature map of a few hundred (400² > 65504) would overflow float16
    assert.deepEqual([...norm.inputs, ...norm.outputs].filter((v) => half.has(v)), [], `${op} reads or writes float16 values`);
  }
});

test('the backward of a LayerNormalization computes in float32 like its forward', async () => {
  const g = emptyGraph('ln');
  const b = new GraphBuilder(g);
  b.input('x', DataType.FLOAT, [2, 8]);
  b.output(b.op('LayerNormalization', ['x', b.constF(new Array(8).fill(4))], { axis: A.i(-1) }, { name: 'ln' }), 'y', DataType.FLOAT, [2, 8]);
  const forward = makeModel(g, 17);
  const feeds = { x: new ort.Tensor('float32', Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)), [2, 8]) };
  // kept forward outputs, as training graphs keep their loss: the backward is marked float32 by its forward node
  const { model: grad } = buildGradientGraph(forward, { shapes: await ortShapes(forward, feeds), wrt: ['x'], cotangents: ['y'], keepForwardOutputs: true });
  const { model } = toFloat16(grad);
  const half = halfValues(model);
  const backward = model.graph.nodes.filter((n) => n.name.startsWith('grad/ln/'));
  assert.ok(backward.length > 3);
  // a loss-scaled d loss/d y of 3e4 times the scale 4 is 1.2e5 in the first backward product, past float16's 65504
  for (const n of backward) assert.deepEqual([...n.inputs, ...n.outputs].filter((v) => half.has(v)), [], `${n.name} reads or writes float16 values`);
});

test('the fp16 DDPO training graph (loss scale 1024, loss in float32) gives the float32 LoRA gradients to about 1%', { skip: needsFixture() }, async () => {
  const { resolveBenchUnet } = await import('../../../src/core/bench/unet');
  const { buildDdpoTrainGraph } = await import('../../../src/core/bench/train');
  const { initLoraWeights, loraFeeds } = await import('../../../src/core/train/lora');
  const { toOrtTensor } = await import('../../../src/core/runtime/ortRun');
  const { GaussianRng } = await import('../../../src/core/diffusion/rng');
  const { cloneModel, numel } = await import('../../../src/core/onnx/ir');
  const g = buildDdpoTrainGraph(resolveBenchUnet('fixture', os.tmpdir()), 16);
  const lora = loraFeeds(g.injected.adapters, initLoraWeights(g.injected.adapters, 4, 4, 0));
  // B starts at zero (PEFT); small random B gives A gradients too
  for (const [k, v] of lora) if (k.includes('lora_B')) new GaussianRng(3).fill(v.data).forEach((_, i, a) => { a[i] *= 0.01; });
  const values: Record<string, number> = { advantages: 1.3, alpha_prod_t: 0.3, alpha_prod_t_prev: 0.35, eta: 1, guidance_scale: 5, timestep: 500, old_log_prob: -7.65, clip_range: 1e-4 };
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 1;
  for (const info of g.model.graph.inputs) {
    if (g.model.graph.initializers.has(info.name)) continue;
    const dims = (info.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    const v = lora.get(info.name) ?? { dims, data: info.name in values ? new Float32Array(numel(dims)).fill(values[info.name]) : new GaussianRng(seed++).fill(new Float32Array(numel(dims))) };
    feeds[info.name] = toOrtTensor(info, v);
  }
  const scaled = cloneModel(g.model);
  const seedInit = [...scaled.graph.initializers.values()].find((x) => x.name.startsWith('loss_seed'))!;
  scaled.graph.initializers.set(seedInit.name, { ...seedInit, data: Float32Array.of(1024) });
  const r32 = await run(g.model, feeds);
  const r16 = await run(toFloat16(scaled, { keepFp32Nodes: (n) => n.name.includes('ddpo_loss') }).model, feeds);
  let num = 0, den = 0;
  for (const k of Object.keys(r32).filter((k) => k.endsWith('_grad'))) {
    const a = r32[k].data as Float32Array, b = r16[k].data as Float32Array;
    for (let i = 0; i < a.length; i++) { num += (b[i] / 1024 - a[i]) ** 2; den += a[i] ** 2; }
  }
  assert.ok(den > 0);
  assert.ok(Math.sqrt(num / den) < 0.02, `relative L2 error of fp16 gradients ${Math.sqrt(num / den)}`);
  assert.equal(r16.loss.type, 'float32');
});
