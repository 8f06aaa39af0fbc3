import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { cloneModel, releaseWeights } from '../../../src/core/onnx/ir';
import { loadModel } from '../../../src/core/onnx/proto';
import { OrtModel } from '../../../src/core/runtime/ortModel';

const UNET = path.resolve(__dirname, '../../../media/tiny-model/unet/model.onnx');

test('releaseWeights frees a graph\'s weight data but keeps every name, type and shape; clones keep theirs', () => {
  const m = loadModel(UNET);
  const twin = cloneModel(m);
  const before = [...m.graph.initializers.values()].map((t) => [t.name, t.dataType, t.dims.join('x')]);
  const bytes = [...m.graph.initializers.values()].reduce((n, t) => n + t.data.byteLength, 0);
  assert.ok(bytes > 1_000_000);
  releaseWeights(m);
  assert.deepEqual([...m.graph.initializers.values()].map((t) => [t.name, t.dataType, t.dims.join('x')]), before);
  assert.equal([...m.graph.initializers.values()].reduce((n, t) => n + t.data.byteLength, 0), 0);
  assert.equal([...twin.graph.initializers.values()].reduce((n, t) => n + t.data.byteLength, 0), bytes, 'a clone still holds the data');
});

test('a released model session says so when run, and releasing twice is harmless', async () => {
  const m = await OrtModel.load(UNET);
  await m.release();
  await m.release();
  assert.equal(m.inputs.length, 3, 'its I/O metadata stays readable');
  await assert.rejects(m.run({}), /was released \(its session is closed\)/);
});
