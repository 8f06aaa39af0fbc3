import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../../../src/core/onnx/proto';
import { readSafetensors, toFloat32 } from '../../../src/core/safetensors';
import { extractStateDict } from './stateDict';
import { buildUNet, timestepFrequencies } from '../../../src/core/graphs/unet';
import { buildClipTextEncoder } from '../../../src/core/graphs/clipText';
import { buildVaeDecoder } from '../../../src/core/graphs/vaeDecoder';
import { TINY_CLIP_TEXT_CONFIG, TINY_UNET_CONFIG, TINY_VAE_CONFIG, ort, relError, runModel } from './helpers';
import { needsFixture, referenceSd } from '../fixtures';

// The strongest check: the fixture's own weights, moved into our graphs, reproduce PyTorch's outputs.

test('UNet built from the fixture weights reproduces the PyTorch forward', { skip: needsFixture() }, async () => {
  const sd = extractStateDict(loadModel(join(referenceSd, 'unet/model.onnx')), { root: ['u', ''] });
  const model = buildUNet(TINY_UNET_CONFIG, { weights: sd });
  assert.deepEqual([...sd.keys()].filter((k) => !model.graph.initializers.has(k)), [], 'every fixture weight is used under its diffusers name');
  const o = readSafetensors(join(referenceSd, 'unet/oracle.safetensors'));
  const f = (k: string): ort.Tensor => new ort.Tensor('float32', toFloat32(o.get(k)!), o.get(k)!.shape);
  const ts = toFloat32(o.get('fwd.timestep')!);
  const out = await runModel(model, {
    sample: f('fwd.sample'), encoder_hidden_states: f('fwd.encoder_hidden_states'),
    timestep: new ort.Tensor('int64', BigInt64Array.from(ts, (v) => BigInt(v)), [ts.length]),
  });
  assert.deepEqual(out.out_sample.dims, o.get('fwd.out_sample')!.shape);
  const err = relError(out.out_sample.data as Float32Array, toFloat32(o.get('fwd.out_sample')!));
  assert.ok(err < 1e-4, `out_sample relative error ${err}`);
});

test('timestep frequencies equal the export\'s float32 constants', { skip: needsFixture() }, () => {
  const fx = loadModel(join(referenceSd, 'unet/model.onnx'));
  const node = fx.graph.nodes.find((n) => n.opType === 'Mul' && n.name.endsWith('/time_proj/Mul'))!;
  const producer = fx.graph.nodes.find((n) => n.outputs[0] === node.inputs[1])!;
  const attr = producer.attrs.value;
  assert.equal(attr.type, 'tensor');
  assert.deepEqual(Array.from(attr.value.data as Float32Array), timestepFrequencies(16));
});

test('CLIP text encoder built from the fixture weights reproduces transformers', { skip: needsFixture() }, async () => {
  const sd = extractStateDict(loadModel(join(referenceSd, 'text_encoder/model.onnx')), { root: ['m', 'text_model'] });
  const model = buildClipTextEncoder(TINY_CLIP_TEXT_CONFIG, { weights: sd });
  assert.deepEqual([...sd.keys()].filter((k) => !model.graph.initializers.has(k)), []);
  const o = readSafetensors(join(referenceSd, 'text_encoder/oracle.safetensors'));
  const ids = o.get('input_ids')!;
  const out = await runModel(model, { input_ids: new ort.Tensor('int32', Int32Array.from(toFloat32(ids)), ids.shape) });
  for (const k of ['last_hidden_state', 'pooler_output']) {
    assert.deepEqual(out[k].dims, o.get(k)!.shape, k);
    const err = relError(out[k].data as Float32Array, toFloat32(o.get(k)!));
    assert.ok(err < 1e-4, `${k} relative error ${err}`);
  }
});

test('VAE decoder built from the fixture weights reproduces diffusers', { skip: needsFixture() }, async () => {
  const sd = extractStateDict(loadModel(join(referenceSd, 'vae_decoder/model.onnx')));
  const model = buildVaeDecoder(TINY_VAE_CONFIG, { weights: sd });
  assert.deepEqual([...sd.keys()].filter((k) => !model.graph.initializers.has(k)), []);
  const o = readSafetensors(join(referenceSd, 'vae_decoder/oracle.safetensors'));
  const z = o.get('latent_sample')!;
  const out = await runModel(model, { latent_sample: new ort.Tensor('float32', toFloat32(z), z.shape) });
  assert.deepEqual(out.sample.dims, o.get('sample')!.shape);
  const err = relError(out.sample.data as Float32Array, toFloat32(o.get('sample')!));
  assert.ok(err < 1e-4, `sample relative error ${err}`);
});

test('a config that does not fit the weights is refused with the tensor name', { skip: needsFixture() }, () => {
  const sd = extractStateDict(loadModel(join(referenceSd, 'unet/model.onnx')), { root: ['u', ''] });
  assert.throws(() => buildUNet({ ...TINY_UNET_CONFIG, cross_attention_dim: 48 }, { weights: sd }), /attn2\.to_k\.weight.*elements/);
});
