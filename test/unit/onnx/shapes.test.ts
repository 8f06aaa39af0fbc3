// inferShapes must agree with what onnxruntime actually produces, on every tensor of every fixture model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { DataType, Model, cloneModel, numel, onnxOpset } from '../../../src/core/onnx/ir';
import { loadModel } from '../../../src/core/onnx/proto';
import { inferShapes } from '../../../src/core/onnx/shapes';
import { specialize } from '../../../src/core/onnx/specialize';
import { fixture, needsFixture } from '../fixtures';
import { randomFloats } from './fixtures';
import { ORT_TYPE, shapesByRunning } from './ortShapes';

interface Case { model: string; shapes: Record<string, number[]> }

const CASES: Case[] = [
  { model: 'reference-sd/unet', shapes: { sample: [1, 4, 16, 16], timestep: [1], encoder_hidden_states: [1, 77, 32] } },
  { model: 'reference-sd/unet', shapes: { sample: [2, 4, 8, 16], timestep: [2], encoder_hidden_states: [2, 10, 32] } },
  { model: 'reference-sd/text_encoder', shapes: { input_ids: [1, 77] } },
  { model: 'reference-sd/text_encoder', shapes: { input_ids: [2, 16] } },
  { model: 'reference-sd/vae_decoder', shapes: { latent_sample: [1, 4, 16, 16] } },
  { model: 'reference-sd/vae_decoder', shapes: { latent_sample: [2, 4, 8, 16] } },
  { model: 'reference-clip-vision', shapes: { pixel_values: [1, 3, 32, 32] } },
  { model: 'reference-clip-vision', shapes: { pixel_values: [2, 3, 32, 32] } },
];

/** Random feeds of the right type: floats in [-1,1), timesteps and token ids as small integers. */
function feedsFor(model: Model, shapes: Record<string, number[]>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  model.graph.inputs.forEach((v, k) => {
    const dims = shapes[v.name], n = numel(dims), r = randomFloats(n, 7 + k);
    if (v.elemType === DataType.FLOAT) feeds[v.name] = new ort.Tensor('float32', r, dims);
    else if (v.elemType === DataType.INT64) feeds[v.name] = new ort.Tensor('int64', BigInt64Array.from(r, (x) => BigInt(Math.floor((x + 1) * 500))), dims);
    else if (v.elemType === DataType.INT32) feeds[v.name] = new ort.Tensor('int32', Int32Array.from(r, (x) => Math.floor((x + 1) * 499)), dims);
    else throw new Error(`no feed for input ${v.name} of type ${DataType[v.elemType]}`);
  });
  return feeds;
}

for (const c of CASES) {
  const label = `${c.model} at ${Object.values(c.shapes).map((s) => `[${s}]`).join(' ')}`;
  test(`inferShapes matches onnxruntime on every tensor: ${label}`, { skip: needsFixture() }, async () => {
    const model = loadModel(fixture(`${c.model}/model.onnx`));
    const fixed = cloneModel(model);
    for (const v of fixed.graph.inputs) v.shape = c.shapes[v.name];
    const inferred = inferShapes(fixed.graph, onnxOpset(model));
    const actual = await shapesByRunning(fixed, feedsFor(model, c.shapes), (name) => inferred.get(name)!.elemType);

    const nodeOutputs = model.graph.nodes.flatMap((n) => n.outputs).filter((o) => o);
    assert.equal(actual.size, nodeOutputs.length, 'ORT returned every tensor');
    const wrong: string[] = [];
    for (const [name, a] of actual) {
      const s = inferred.get(name)!;
      if (ORT_TYPE[s.elemType] !== a.type || s.dims.join() !== a.dims.join()) wrong.push(`${name}: inferred ${DataType[s.elemType]}[${s.dims}], ORT ${a.type}[${a.dims}]`);
    }
    assert.deepEqual(wrong, []);

    // the specialized (folded) model reports the same shapes for the tensors it keeps
    const spec = specialize(model, { inputShapes: c.shapes });
    for (const n of spec.model.graph.nodes) for (const o of n.outputs) {
      assert.deepEqual(spec.shapes.get(o)?.dims, actual.get(o)!.dims, `specialized shape of ${o}`);
    }
  });
}
