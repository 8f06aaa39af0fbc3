// Shape rules beyond the fixtures, and their opset variants, checked against onnxruntime on small graphs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { A, GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, Model, emptyGraph, makeModel, numel } from '../../../src/core/onnx/ir';
import { inferShapes } from '../../../src/core/onnx/shapes';
import { randomFloats } from './fixtures';
import { ORT_TYPE, shapesByRunning } from './ortShapes';

const F = DataType.FLOAT;

/** Builds a model whose float inputs have the given shapes; `body` adds nodes; every node output is checked. */
function graphOf(opset: number, inputs: Record<string, number[]>, body: (b: GraphBuilder, x: Record<string, string>) => string[]): Model {
  const g = emptyGraph('t');
  const b = new GraphBuilder(g);
  const x = Object.fromEntries(Object.entries(inputs).map(([k, s]) => [k, b.input(k, F, s)]));
  for (const o of body(b, x)) g.outputs.push({ name: o, elemType: F, shape: null });
  return makeModel(g, opset);
}

/** Asserts inferShapes equals ORT's actual type and dims on every node output. */
async function agreesWithOrt(model: Model): Promise<void> {
  const inferred = inferShapes(model.graph, model.opsetImports[0].version);
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of model.graph.inputs) feeds[v.name] = new ort.Tensor('float32', randomFloats(numel(v.shape as number[])), v.shape as number[]);
  for (const o of model.graph.outputs) o.elemType = inferred.get(o.name)!.elemType;
  const actual = await shapesByRunning(model, feeds, (n) => inferred.get(n)!.elemType);
  for (const n of model.graph.nodes) for (const o of n.outputs) {
    const s = inferred.get(o)!, a = actual.get(o)!;
    assert.deepEqual([ORT_TYPE[s.elemType], s.dims], [a.type, a.dims], `${n.opType} node ${n.name} output ${o}`);
  }
}

test('axes as attributes before opset 13 and as inputs from 13 (Squeeze, Unsqueeze, ReduceSum, Split)', async () => {
  await agreesWithOrt(graphOf(11, { x: [2, 1, 6] }, (b, { x }) => [
    b.op('Squeeze', [x], { axes: A.ints([1]) }),
    b.op('Unsqueeze', [x], { axes: A.ints([0, -1]) }),
    b.op('ReduceSum', [x], { axes: A.ints([2]), keepdims: A.i(0) }),
    ...b.nodeN('Split', [x], { axis: A.i(2), split: A.ints([2, 4]) }, { outputs: 2 }),
    b.op('ReduceMean', [x], { axes: A.ints([-1]) }),
  ]));
  await agreesWithOrt(graphOf(13, { x: [2, 1, 6] }, (b, { x }) => [
    b.op('Squeeze', [x, b.constI64([1])]),
    b.op('Squeeze', [x]),
    b.op('Unsqueeze', [x, b.constI64([0, -1])]),
    b.op('ReduceSum', [x, b.constI64([2])], { keepdims: A.i(0) }),
    b.op('ReduceSum', [x]),
    ...b.nodeN('Split', [x, b.constI64([1, 5])], { axis: A.i(-1) }, { outputs: 2 }),
    ...b.nodeN('Split', [x], { axis: A.i(0) }, { outputs: 2 }),
    b.op('ReduceMean', [x], { axes: A.ints([0, 2]) }),
  ]));
});

test('ReduceMean takes axes as an input and Split takes num_outputs from opset 18', async () => {
  await agreesWithOrt(graphOf(18, { x: [2, 3, 7] }, (b, { x }) => [
    b.op('ReduceMean', [x, b.constI64([1])]),
    b.op('ReduceMax', [x, b.constI64([-1])], { keepdims: A.i(0) }),
    ...b.nodeN('Split', [x], { axis: A.i(2), num_outputs: A.i(3) }, { outputs: 3 }),
  ]));
});

test('convolutions, pooling, resize, pad and friends match onnxruntime', async () => {
  await agreesWithOrt(graphOf(17, { x: [2, 4, 9, 10], w: [6, 2, 3, 3], wt: [4, 3, 3, 3], m: [10, 5] }, (b, { x, w, wt, m }) => [
    b.op('Conv', [x, w], { group: A.i(2), strides: A.ints([2, 2]), pads: A.ints([1, 0, 1, 2]), dilations: A.ints([1, 2]) }),
    b.op('Conv', [x, w], { group: A.i(2), auto_pad: A.s('SAME_UPPER'), strides: A.ints([2, 3]) }),
    b.op('ConvTranspose', [x, wt], { strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]), output_padding: A.ints([1, 0]) }),
    b.op('MaxPool', [x], { kernel_shape: A.ints([3, 3]), strides: A.ints([2, 2]), ceil_mode: A.i(1) }),
    b.op('AveragePool', [x], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]) }),
    b.op('GlobalAveragePool', [x]),
    b.op('Resize', [x, '', b.constF([1, 1, 2, 1.5])], { mode: A.s('nearest') }),
    b.op('Resize', [x, '', '', b.constI64([2, 4, 5, 7])], { mode: A.s('linear') }),
    b.op('Pad', [x, b.constI64([0, 0, 1, 2, 0, 0, 3, 4])]),
    b.op('Tile', [x, b.constI64([1, 2, 1, 3])]),
    b.op('Flatten', [x], { axis: A.i(2) }),
    b.op('Transpose', [x], { perm: A.ints([0, 2, 3, 1]) }),
    b.op('Expand', [m, b.constI64([3, 1, 5])]),
    b.op('Gemm', [m, m], { transA: A.i(1) }),
    b.op('MatMul', [x, b.constF(randomFloats(10 * 3), [10, 3])]),
    b.op('Einsum', [m, m], { equation: A.s('ij,kj->ik') }),
    b.op('Slice', [x, b.constI64([-1, 1]), b.constI64([-1000, 9]), b.constI64([3, 2]), b.constI64([-2, 3])]),
    b.op('Gather', [m, b.constI64([[0, 1], [2, 3]].flat(), [2, 2])], { axis: A.i(1) }),
    b.op('ArgMax', [x], { axis: A.i(1), keepdims: A.i(0) }),
    b.op('LayerNormalization', [m, b.constF(new Array(5).fill(1))], { axis: A.i(-1) }),
    b.op('InstanceNormalization', [x, b.constF([1, 1, 1, 1]), b.constF([0, 0, 0, 0])]),
    b.op('Softmax', [x], { axis: A.i(1) }),
    b.op('Where', [b.op('Greater', [m, b.scalar(0)]), m, b.constF([0, 0, 0, 0, 0])]),
    b.op('Clip', [x, b.scalar(0), b.scalar(1)]),
    b.op('Cast', [b.op('Range', [b.scalar(0), b.scalar(2.5), b.scalar(0.5)])], { to: A.i(DataType.FLOAT) }),
    b.op('Cast', [b.op('ConstantOfShape', [b.constI64([2, 3])])], { to: A.i(DataType.FLOAT) }),
    b.op('Cast', [b.op('Shape', [x], { start: A.i(1), end: A.i(-1) })], { to: A.i(DataType.FLOAT) }),
  ]));
});

test('an op without a rule is an error naming the op and the node', () => {
  const g = graphOf(17, { x: [2] }, (b, { x }) => [b.op('Foo', [x], {}, { name: '/u/down/Foo_3' })]).graph;
  assert.throws(() => inferShapes(g, 17), /Foo node "\/u\/down\/Foo_3": no shape rule for op "Foo"/);
});

test('a shape that depends on data is an error naming the node and its input', () => {
  const g = graphOf(17, { x: [2, 3], s: [2] }, (b, { x, s }) => [b.op('Reshape', [x, b.op('Cast', [s], { to: A.i(DataType.INT64) })], {}, { name: 'r' })]).graph;
  assert.throws(() => inferShapes(g, 17), /Reshape node "r": its shape input ".*Cast.*" is not a constant/);
});

test('a free input dim is an error telling how to fix it', () => {
  const g = emptyGraph();
  new GraphBuilder(g).input('x', F, ['batch', 3]);
  assert.throws(() => inferShapes(g, 17), /graph input "x" dim 0 \("batch"\) is not fixed; pass it to specialize/);
});
