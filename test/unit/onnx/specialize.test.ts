// specialize(): fixed dims, folded shape chains, and the same outputs as the PyTorch oracles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { DataType, Model, emptyGraph, makeModel } from '../../../src/core/onnx/ir';
import { GraphBuilder } from '../../../src/core/onnx/builder';
import { decodeModel, encodeModel, loadModel } from '../../../src/core/onnx/proto';
import { specialize } from '../../../src/core/onnx/specialize';
import { readSafetensors, toFloat32 } from '../../../src/core/safetensors';
import { fixture, needsFixture } from '../fixtures';
import { runModel } from './ortShapes';

/** Largest |a-b| relative to the largest |b|. */
function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let err = 0, mag = 0;
  for (let i = 0; i < a.length; i++) { err = Math.max(err, Math.abs(a[i] - b[i])); mag = Math.max(mag, Math.abs(b[i])); }
  return err / mag;
}

/** Runs `model` on oracle tensors (`feeds`: input name -> [oracle key, type]) and compares outputs with oracle keys. */
async function checkAgainstOracle(model: Model, oracleFile: string, feeds: Record<string, [string, 'float32' | 'int64' | 'int32']>, outs: Record<string, string>) {
  const oracle = readSafetensors(fixture(oracleFile));
  const f: Record<string, ort.Tensor> = {};
  for (const [input, [key, type]] of Object.entries(feeds)) {
    const t = oracle.get(key)!, v = toFloat32(t);
    const data = type === 'int64' ? BigInt64Array.from(v, (x) => BigInt(Math.round(x))) : type === 'int32' ? Int32Array.from(v, Math.round) : v;
    f[input] = new ort.Tensor(type, data, t.shape);
  }
  const res = await runModel(model, f);
  for (const [out, key] of Object.entries(outs)) {
    const err = relErr(res[out].data as Float32Array, toFloat32(oracle.get(key)!));
    assert.ok(err < 1e-4, `${out} differs from oracle ${key}: relative error ${err}`);
  }
}

const SHAPE_OPS = ['Shape', 'Gather', 'ConstantOfShape', 'Constant', 'Range', 'Equal', 'Where'];
const count = (m: Model, ops: string[]) => m.graph.nodes.filter((n) => ops.includes(n.opType)).length;

test('specialized UNet loses its shape arithmetic and still matches the oracle', { skip: needsFixture() }, async () => {
  const model = loadModel(fixture('reference-sd/unet/model.onnx'));
  const { model: spec, shapes, nodesBefore, nodesAfter } = specialize(model, { dims: { batch: 2, height: 16, width: 16, sequence: 77 } });
  assert.equal(nodesBefore, 1256);
  assert.equal(model.graph.nodes.length, 1256, 'the input model is left alone');
  assert.ok(nodesAfter < 600, `expected most of the 1256 nodes folded away, ${nodesAfter} remain`);
  assert.equal(count(spec, SHAPE_OPS), 0, 'no Shape/Gather/Constant/... chains remain');
  assert.deepEqual(spec.graph.outputs[0].shape, [2, 4, 16, 16]);
  assert.deepEqual(shapes.get('out_sample')?.dims, [2, 4, 16, 16]);
  for (const [name, t] of spec.graph.initializers) {
    const orig = model.graph.initializers.get(name);
    if (orig) assert.equal(t.data, orig.data, `weight ${name} is shared with the input model, not copied`);
  }
  await checkAgainstOracle(spec, 'reference-sd/unet/oracle.safetensors',
    { sample: ['fwd.sample', 'float32'], timestep: ['fwd.timestep', 'int64'], encoder_hidden_states: ['fwd.encoder_hidden_states', 'float32'] },
    { out_sample: 'fwd.out_sample' });
});

test('specialized text encoder, VAE decoder and CLIP vision match their oracles', { skip: needsFixture() }, async () => {
  const te = specialize(loadModel(fixture('reference-sd/text_encoder/model.onnx')), { dims: { batch: 2, sequence: 77 } }).model;
  assert.equal(count(te, ['Shape', 'ConstantOfShape', 'Range', 'Constant']), 0);
  await checkAgainstOracle(te, 'reference-sd/text_encoder/oracle.safetensors', { input_ids: ['input_ids', 'int32'] },
    { last_hidden_state: 'last_hidden_state', pooler_output: 'pooler_output' });
  const vae = specialize(loadModel(fixture('reference-sd/vae_decoder/model.onnx')), { inputShapes: { latent_sample: [1, 4, 16, 16] } }).model;
  assert.equal(count(vae, SHAPE_OPS), 0);
  assert.deepEqual(vae.graph.outputs[0].shape, [1, 3, 32, 32]);
  await checkAgainstOracle(vae, 'reference-sd/vae_decoder/oracle.safetensors', { latent_sample: ['latent_sample', 'float32'] }, { sample: 'sample' });
  const clip = specialize(loadModel(fixture('reference-clip-vision/model.onnx')), { dims: { batch: 2 } }).model;
  await checkAgainstOracle(clip, 'reference-clip-vision/oracle.safetensors', { pixel_values: ['pixel_values', 'float32'] }, { image_embeds: 'image_embeds' });
});

test('specialize writes value_info for every intermediate tensor, and it survives encoding', { skip: needsFixture() }, () => {
  const { model } = specialize(loadModel(fixture('reference-clip-vision/model.onnx')), { dims: { batch: 3 } });
  const back = decodeModel(encodeModel(model));
  const info = new Map(back.graph.valueInfo.map((v) => [v.name, v.shape]));
  const outs = new Set(back.graph.outputs.map((o) => o.name));
  for (const n of back.graph.nodes) for (const o of n.outputs) {
    if (!outs.has(o)) assert.ok(info.get(o)?.every((d) => typeof d === 'number'), `value_info of ${o}`);
  }
  assert.deepEqual(back.graph.inputs[0].shape, [3, 3, 32, 32]);
});

test('specialize names the free dim it cannot fix and rejects unknown inputs', { skip: needsFixture() }, () => {
  const model = loadModel(fixture('reference-sd/unet/model.onnx'));
  assert.throws(() => specialize(model, { dims: { batch: 1, height: 8, width: 8 } }), /input "encoder_hidden_states" dim 1 \("sequence"\) is free; pass dims\.sequence/);
  assert.throws(() => specialize(model, { inputShapes: { latents: [1, 4, 8, 8] } }), /no graph input named latents/);
  assert.throws(() => specialize(loadModel(fixture('reference-clip-vision/model.onnx')), { inputShapes: { pixel_values: [1, 3, 64, 64] } }),
    /dim 2 is fixed to 32 in the model but inputShapes gives 64/);
});

test('an input dim written as -1 (as some converters write an unknown dim) is fixed by inputShapes, or named when not given', () => {
  const g = emptyGraph();
  const b = new GraphBuilder(g);
  b.input('x', DataType.FLOAT, [-1, 3]);
  b.output(b.op('Relu', ['x']), 'y');
  const model = decodeModel(encodeModel(makeModel(g)));
  assert.deepEqual(model.graph.inputs[0].shape, [-1, 3]);
  assert.deepEqual(specialize(model, { inputShapes: { x: [2, 3] } }).shapes.get('y')?.dims, [2, 3]);
  assert.throws(() => specialize(model, { dims: { batch: 2 } }), /input "x" dim 0 \("-1"\) is free; pass inputShapes\.x/);
});
