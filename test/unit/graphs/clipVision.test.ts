import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../../../src/core/onnx/proto';
import { readSafetensors, toFloat32 } from '../../../src/core/safetensors';
import { buildClipVisionModel } from '../../../src/core/graphs/clipVision';
import { buildClipTextEncoder } from '../../../src/core/graphs/clipText';
import { fillRandom } from '../../../src/core/graphs/weights';
import { extractStateDict } from './stateDict';
import { fixture, needsFixture, referenceSd } from '../fixtures';
import { TINY_CLIP_TEXT_CONFIG, TINY_CLIP_VISION_CONFIG, noise, ort, relError, runModel } from './helpers';

const referenceClipVision = fixture('reference-clip-vision');

// The CLIP towers a reward backbone is made of, checked against transformers' own outputs.

test('CLIP vision tower built from the fixture weights reproduces transformers', { skip: needsFixture('reference-clip-vision') }, async () => {
  const sd = extractStateDict(loadModel(join(referenceClipVision, 'model.onnx')), { root: ['m', ''] });
  assert.ok(sd.has('vision_model.embeddings.class_embedding') && sd.has('visual_projection.weight'), 'class token and projection recovered');
  const model = buildClipVisionModel(TINY_CLIP_VISION_CONFIG, { weights: sd });
  assert.deepEqual([...sd.keys()].filter((k) => !model.graph.initializers.has(k)), [], 'every fixture weight is used under its transformers name');
  const o = readSafetensors(join(referenceClipVision, 'oracle.safetensors'));
  const px = o.get('pixel_values')!;
  const out = await runModel(model, { pixel_values: new ort.Tensor('float32', toFloat32(px), px.shape) });
  assert.deepEqual(out.image_embeds.dims, o.get('image_embeds')!.shape);
  const err = relError(out.image_embeds.data as Float32Array, toFloat32(o.get('image_embeds')!));
  assert.ok(err < 1e-4, `image_embeds relative error ${err}`);
  assert.deepEqual(out.last_hidden_state.dims, [px.shape[0], 65, 32], 'last_hidden_state: class token + 8x8 patches');
});

test('CLIP vision tower without projection_dim outputs pooler_output, and any batch runs', async () => {
  const model = buildClipVisionModel({ ...TINY_CLIP_VISION_CONFIG, projection_dim: undefined }, { seed: 3 });
  const out = await runModel(model, { pixel_values: new ort.Tensor('float32', noise(3 * 3 * 32 * 32, 4), [3, 3, 32, 32]) });
  assert.deepEqual(out.pooler_output.dims, [3, 32]);
  assert.equal(out.image_embeds, undefined);
  assert.ok((out.pooler_output.data as Float32Array).every(Number.isFinite));
});

test('CLIP text tower with projection: text_embeds is text_projection of the fixture pooler_output', { skip: needsFixture() }, async () => {
  const sd = extractStateDict(loadModel(join(referenceSd, 'text_encoder/model.onnx')), { root: ['m', 'text_model'] });
  const P = 16, d = TINY_CLIP_TEXT_CONFIG.hidden_size;
  const proj = fillRandom(new Float32Array(P * d), { kind: 'normal', std: 0.2 }, 7, 'text_projection.weight');
  sd.set('text_projection.weight', proj);
  const model = buildClipTextEncoder(TINY_CLIP_TEXT_CONFIG, { weights: sd, projectionDim: P, inputIds: 'int64' });
  assert.deepEqual(model.graph.outputs.map((v) => v.name), ['text_embeds', 'last_hidden_state']);
  const o = readSafetensors(join(referenceSd, 'text_encoder/oracle.safetensors'));
  const ids = o.get('input_ids')!;
  const out = await runModel(model, { input_ids: new ort.Tensor('int64', BigInt64Array.from(toFloat32(ids), (v) => BigInt(v)), ids.shape) });
  const last = toFloat32(o.get('last_hidden_state')!);
  assert.ok(relError(out.last_hidden_state.data as Float32Array, last) < 1e-4, 'last_hidden_state matches transformers');
  const pooled = toFloat32(o.get('pooler_output')!);
  const rows = ids.shape[0];
  const want = new Float32Array(rows * P);
  for (let r = 0; r < rows; r++) for (let j = 0; j < P; j++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += proj[j * d + i] * pooled[r * d + i];
    want[r * P + j] = s;
  }
  assert.deepEqual(out.text_embeds.dims, [rows, P]);
  const err = relError(out.text_embeds.data as Float32Array, want);
  assert.ok(err < 1e-4, `text_embeds relative error ${err}`);
});
