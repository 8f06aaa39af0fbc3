import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { tensorFor, tensorToFloat32 } from '../../../src/core/runtime/ortModel';
import { parseProviderSetting } from '../../../src/core/runtime/providers';

test('host values are fed as the element type the model declares', () => {
  const spec = (type: ort.Tensor.Type) => ({ name: 'x', type, shape: ['batch'] });
  const i64 = tensorFor(spec('int64'), [981, 501], [2]);
  assert.deepEqual(Array.from(i64.data as BigInt64Array), [981n, 501n]);
  assert.ok(tensorFor(spec('int32'), Float32Array.of(998, 999), [2]).data instanceof Int32Array);
  const scalar = tensorFor(spec('float32'), [801], []);
  assert.deepEqual(scalar.dims, []);
  assert.throws(() => tensorFor(spec('string'), [1], [1]), /element type string/);
});

test('float16 tensors round-trip through their Uint16 bits', () => {
  const values = Float32Array.of(0, 1, -2.5, 0.1, 65504, 1e-7, -0);
  const t = tensorFor({ name: 'h', type: 'float16', shape: [7] }, values, [7]);
  assert.equal(t.type, 'float16');
  const back = tensorToFloat32(t);
  assert.deepEqual(Array.from(back.subarray(0, 3)), [0, 1, -2.5]);
  assert.ok(Math.abs(back[3] - 0.1) < 1e-4 && back[4] === 65504 && Math.abs(back[5] - 1e-7) < 3e-8);
});

test('unknown execution providers are refused with the valid list; auto is one', () => {
  assert.equal(parseProviderSetting('cuda'), 'cuda');
  assert.equal(parseProviderSetting('auto'), 'auto');
  assert.throws(() => parseProviderSetting('tpu'), /--ep tpu: use auto, cuda, webgpu, dml, coreml or cpu$/);
});
