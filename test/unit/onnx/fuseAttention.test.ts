import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Model } from '../../../src/core/onnx/ir';
import { encodeModel, loadModel } from '../../../src/core/onnx/proto';
import { specialize } from '../../../src/core/onnx/specialize';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import { unetDimOverrides } from '../../../src/core/diffusion/unetRoles';
import { fuseAttention } from '../../../src/core/onnx/fuseAttention';
import { needsFixture, referenceSd } from '../fixtures';

const TINY_UNET = join(__dirname, '../../../media/tiny-model/unet/model.onnx');

async function run(model: Model, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
  try { return (await s.run(feeds))[s.outputNames[0]].data as Float32Array; } finally { await s.release(); }
}

function maxRel(y: Float32Array, ref: Float32Array): number {
  let e = 0, sc = 0;
  for (let i = 0; i < y.length; i++) { e = Math.max(e, Math.abs(y[i] - ref[i])); sc = Math.max(sc, Math.abs(ref[i])); }
  return e / sc;
}

function feedsFor(model: Model, batch: number, latent: number): Record<string, ort.Tensor> {
  const [sample, timestep, text] = model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name));
  const channels = Number(sample.shape?.[1] ?? 4);
  const seq = Number(text.shape?.[1]) || 77, dim = Number(text.shape?.[2]);
  const rand = (dims: number[], seed: number) => new ort.Tensor('float32', new GaussianRng(seed).fill(new Float32Array(dims.reduce((a, b) => a * b, 1))), dims);
  const tDims = timestep.shape?.length ? [batch] : [];
  return {
    [sample.name]: rand([batch, channels, latent, latent], 1),
    [timestep.name]: timestep.elemType === 7 ? new ort.Tensor('int64', new BigInt64Array(tDims.length ? batch : 1).fill(400n), tDims)
      : new ort.Tensor('float32', new Float32Array(tDims.length ? batch : 1).fill(400), tDims),
    [text.name]: rand([batch, seq, dim], 2),
  };
}

for (const [label, file, skip] of [['embedded tiny UNet (graph builder)', TINY_UNET, false], ['fixture UNet (PyTorch export)', join(referenceSd, 'unet/model.onnx'), needsFixture()]] as const) {
  test(`fusing the ${label}'s attention into MultiHeadAttention keeps its output, folded into batch 1 or not`, { skip }, async () => {
    const batch = 2, latent = 8;
    // exports compute reshape shapes at run time; specializing to the static session shapes folds them to constants
    const loaded = loadModel(file);
    const text = loaded.graph.inputs[2];
    const model = specialize(loaded, { dims: unetDimOverrides(loaded, batch, latent, Number(text.shape?.[1]) || 77) }).model;
    const softmaxes = model.graph.nodes.filter((n) => n.opType === 'Softmax').length;
    const feeds = feedsFor(model, batch, latent);
    const ref = await run(model, feeds);
    const plain = fuseAttention(model);
    assert.equal(plain.fused, softmaxes, 'every attention core is fused');
    assert.equal(plain.model.graph.nodes.filter((n) => n.opType === 'Softmax').length, 0);
    assert.equal(plain.model.graph.nodes.filter((n) => n.opType === 'MultiHeadAttention' && n.domain === 'com.microsoft').length, softmaxes);
    assert.ok(maxRel(await run(plain.model, feeds), ref) < 1e-5);
    // folding needs the batch fixed in the graph's shapes only through num_heads; specialize like the static-shape sessions do
    const folded = fuseAttention(model, { foldBatch: batch });
    assert.equal(folded.fused, softmaxes);
    assert.ok(maxRel(await run(folded.model, feeds), ref) < 1e-5);
  });
}

test('a graph without the decomposed attention pattern is left as it is', async () => {
  const model = loadModel(TINY_UNET);
  const spec = specialize(model, { inputShapes: { sample: [1, 4, 8, 8], timestep: [1], encoder_hidden_states: [1, 77, 32] } }).model;
  // break the pattern: the softmax input gets a second consumer
  const sm = spec.graph.nodes.find((n) => n.opType === 'Softmax')!;
  spec.graph.outputs.push({ name: sm.inputs[0], elemType: 1, shape: null });
  const r = fuseAttention(spec);
  assert.equal(r.fused, spec.graph.nodes.filter((n) => n.opType === 'Softmax').length - 1);
});

// Before opset 13 a Softmax without `axis` normalises over everything from axis 1 on (the heads, queries and keys
// together), which MultiHeadAttention does not compute: fusing it would change the model's output.
test('an attention core whose Softmax has no axis is fused only where the opset makes that the keys axis (13 and later)', () => {
  const model = specialize(loadModel(TINY_UNET), { inputShapes: { sample: [1, 4, 8, 8], timestep: [1], encoder_hidden_states: [1, 77, 32] } }).model;
  const softmaxes = model.graph.nodes.filter((n) => n.opType === 'Softmax');
  for (const sm of softmaxes) delete sm.attrs.axis;
  const atOpset = (v: number): Model => ({ ...model, opsetImports: model.opsetImports.map((o) => (o.domain === '' || o.domain === 'ai.onnx' ? { ...o, version: v } : o)) });
  assert.equal(fuseAttention(atOpset(13)).fused, softmaxes.length, 'opset 13: no axis means the last, the keys');
  assert.equal(fuseAttention(atOpset(12)).fused, 0, 'opset 12: no axis means from axis 1 on, not attention');
  for (const sm of softmaxes) sm.attrs.axis = { type: 'int', value: -1 };
  assert.equal(fuseAttention(atOpset(12)).fused, softmaxes.length, 'opset 12 with the axis written out');
});
