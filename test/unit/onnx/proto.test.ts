// ONNX codec: external data round trips, and broken files fail with errors that name the problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { bytesOfData } from '../../../src/core/onnx/ir';
import { decodeModel, encodeModel, loadModel, saveModel } from '../../../src/core/onnx/proto';
import { PbReader, PbWriter } from '../../../src/core/onnx/protobuf';
import { fixture, needsFixture } from '../fixtures';
import { randomFloats } from './fixtures';
import { runModel } from './ortShapes';

const VAE = 'reference-sd/vae_decoder/model.onnx';
const feed = () => ({ latent_sample: new ort.Tensor('float32', randomFloats(1 * 4 * 8 * 8, 3), [1, 4, 8, 8]) });

for (const dataFile of ['model.onnx_data', 'weights.pb', 'vae.onnx.data']) {
  test(`saveModel with external data in ${dataFile} reloads identical tensors and outputs`, { skip: needsFixture() }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-ext-'));
    try {
      const model = loadModel(fixture(VAE));
      const file = join(dir, 'model.onnx');
      saveModel(model, file, { externalData: dataFile });
      assert.ok(statSync(file).size < 200_000, 'the weights left the .onnx file');
      assert.ok(statSync(join(dir, dataFile)).size > 1_000_000, 'and went to the data file');
      const back = loadModel(file);
      assert.equal(back.graph.initializers.size, model.graph.initializers.size);
      for (const [name, t] of model.graph.initializers) {
        const u = back.graph.initializers.get(name)!;
        assert.deepEqual([u.dataType, u.dims], [t.dataType, t.dims], name);
        assert.ok(Buffer.from(bytesOfData(u.data)).equals(Buffer.from(bytesOfData(t.data))), `bytes of ${name}`);
      }
      const want = (await runModel(model, feed())).sample.data as Float32Array;
      assert.deepEqual((await runModel(back, feed())).sample.data, want);
      // onnxruntime itself reads the external file next to the saved model
      const session = await ort.InferenceSession.create(file);
      assert.deepEqual((await session.run(feed())).sample.data, want);
      await session.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a model whose external data file is missing fails naming that file', { skip: needsFixture() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-ext-'));
  try {
    const file = join(dir, 'model.onnx');
    saveModel(loadModel(fixture(VAE)), file, { externalData: 'model.onnx_data' });
    unlinkSync(join(dir, 'model.onnx_data'));
    assert.throws(() => loadModel(file), /external data file model\.onnx_data is missing next to .*model\.onnx/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('truncated model bytes fail with an error naming the file', { skip: needsFixture() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-trunc-'));
  try {
    const bytes = readFileSync(fixture(VAE));
    const file = join(dir, 'cut.onnx');
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
    assert.throws(() => loadModel(file), /cut\.onnx is not a valid ONNX model \(.+\); re-export or re-download it/);
    assert.throws(() => decodeModel(bytes.subarray(0, 1000)), /truncated protobuf/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('encode/decode keeps node names, order and attributes', { skip: needsFixture() }, () => {
  const model = loadModel(fixture('reference-sd/unet/model.onnx'));
  const back = decodeModel(encodeModel(model));
  assert.deepEqual(back.graph.nodes.map((n) => n.name), model.graph.nodes.map((n) => n.name));
  assert.deepEqual(back.graph.nodes.map((n) => n.attrs), model.graph.nodes.map((n) => n.attrs));
  assert.deepEqual(back.graph.inputs, model.graph.inputs);
});

test('fields the decoder does not know (e.g. a doc_string) are skipped whole', () => {
  const skipped = new PbWriter().stringField(6, 'a doc string the decoder skips').varintField(1, 8);
  const r = new PbReader(Buffer.concat(skipped.finishChunks()));
  const [f, w] = r.tag();
  assert.equal(f, 6);
  r.skip(w);
  assert.deepEqual(r.tag(), [1, 0]);
  assert.equal(r.int(), 8);
});
