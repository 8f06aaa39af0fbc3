/** buildGradientGraph behaviour: loss seeding, accumulation, pruning, integer tensors, errors, naming. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildGradientGraph } from '../../../src/core/autodiff/gradient';
import { A, GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, Model, emptyGraph, makeModel, makeTensor } from '../../../src/core/onnx/ir';
import { ortShapes, session } from './ortRun';

const f32 = (dims: number[], values: number[]) => new ort.Tensor('float32', Float32Array.from(values), dims);

/** x [3] (input), w [3] (initializer): loss = sum(x*x*w + sin(x)); also an unused branch y2 = exp(w). */
function smallModel(): Model {
  const g = emptyGraph('small');
  const b = new GraphBuilder(g);
  b.input('x', DataType.FLOAT, [3]);
  g.initializers.set('w', makeTensor('w', DataType.FLOAT, [3], [0.5, -1, 2]));
  const xx = b.op('Mul', ['x', 'x'], {}, { name: 'square' });
  const t = b.op('Add', [b.op('Mul', [xx, 'w'], {}, { name: 'scale' }), b.op('Sin', ['x'], {}, { name: 'sin' })], {}, { name: 'sum' });
  b.output(b.op('ReduceSum', [t], { keepdims: A.i(0) }, { name: 'loss', outputs: ['loss'] }), 'loss', DataType.FLOAT, []);
  b.output(b.op('Exp', ['w'], {}, { name: 'side', outputs: ['side'] }), 'side', DataType.FLOAT, [3]);
  return makeModel(g);
}

const X = [0.3, -0.7, 1.1], W = [0.5, -1, 2];

async function run(m: Model, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
  const s = await session(m);
  const r = await s.run(feeds);
  await s.release();
  return r;
}

test('a scalar loss is seeded with 1, and contributions of a tensor used twice add up', async () => {
  const m = smallModel();
  const shapes = await ortShapes(m, { x: f32([3], X) });
  const { model, grads } = buildGradientGraph(m, { shapes, wrt: ['x', 'w'], loss: 'loss', keepForwardOutputs: true });
  assert.deepEqual(grads, { x: 'x_grad', w: 'w_grad' });
  const r = await run(model, { x: f32([3], X) });
  // dL/dx = 2 x w + cos x, dL/dw = x^2
  X.forEach((x, i) => assert.ok(Math.abs((r.x_grad.data as Float32Array)[i] - (2 * x * W[i] + Math.cos(x))) < 1e-5));
  X.forEach((x, i) => assert.ok(Math.abs((r.w_grad.data as Float32Array)[i] - x * x) < 1e-5));
  assert.ok('loss' in r && 'side' in r, 'keepForwardOutputs keeps the forward outputs');
  assert.ok(model.graph.initializers.has('w'), 'a differentiated initializer stays a constant');
});

test('only nodes between wrt and the loss get gradient code, named after their forward node', async () => {
  const m = smallModel();
  const shapes = await ortShapes(m, { x: f32([3], X) });
  const { model } = buildGradientGraph(m, { shapes, wrt: ['x'], loss: 'loss' });
  const names = model.graph.nodes.map((n) => n.name);
  assert.ok(names.some((n) => n.startsWith('grad/square/')) && names.some((n) => n.startsWith('grad/sin/')));
  assert.ok(!names.some((n) => n.startsWith('grad/side/')), 'the branch that does not reach the loss gets no gradient');
  assert.ok(!names.includes('side'), 'forward nodes no output needs are removed');
  // d(x*x*w)/dw is not requested: the scale node emits only its x-side product
  assert.equal(names.filter((n) => n.startsWith('grad/scale/')).length, 1);
  assert.deepEqual(model.graph.outputs.map((o) => o.name), ['x_grad']);
});

test('cotangents become inputs named <output>_grad and give the vector-Jacobian product', async () => {
  const m = smallModel();
  const shapes = await ortShapes(m, { x: f32([3], X) });
  const { model } = buildGradientGraph(m, { shapes, wrt: ['w'], cotangents: ['side'] });
  assert.ok(model.graph.inputs.some((i) => i.name === 'side_grad'));
  const r = await run(model, { x: f32([3], X), side_grad: f32([3], [1, 2, 3]) });
  W.forEach((w, i) => assert.ok(Math.abs((r.w_grad.data as Float32Array)[i] - (i + 1) * Math.exp(w)) < 1e-4));
});

test('a wrt tensor that does not reach the loss gets a zero gradient', async () => {
  const m = smallModel();
  const shapes = await ortShapes(m, { x: f32([3], X) });
  const { model } = buildGradientGraph(m, { shapes, wrt: ['x'], cotangents: ['side'] });
  const r = await run(model, { x: f32([3], X), side_grad: f32([3], [1, 1, 1]) });
  assert.deepEqual([...(r.x_grad.data as Float32Array)], [0, 0, 0]);
});

test('integer tensors and shape computations carry no gradient', async () => {
  const g = emptyGraph('ints');
  const b = new GraphBuilder(g);
  b.input('x', DataType.FLOAT, [2, 3]);
  b.input('n', DataType.INT64, [2]);
  // y = sum(reshape(x, shape(x)) * cast(x to int)) : the Cast-to-int path is piecewise constant
  const shaped = b.op('Reshape', ['x', b.op('Shape', ['x'])]);
  const asInt = b.op('Cast', [b.op('Cast', ['x'], { to: A.i(DataType.INT64) })], { to: A.i(DataType.FLOAT) });
  b.output(b.op('ReduceSum', [b.op('Mul', [shaped, asInt])], { keepdims: A.i(0) }, { outputs: ['y'] }), 'y', DataType.FLOAT, []);
  const m = makeModel(g);
  const x = f32([2, 3], [1.5, 2.5, -1.2, 0.4, 3.7, -2.6]);
  const shapes = await ortShapes(m, { x, n: new ort.Tensor('int64', new BigInt64Array(2), [2]) });
  const { model } = buildGradientGraph(m, { shapes, wrt: ['x'], loss: 'y' });
  const r = await run(model, { x, n: new ort.Tensor('int64', new BigInt64Array(2), [2]) });
  assert.deepEqual([...(r.x_grad.data as Float32Array)], [1, 2, -1, 0, 3, -2]);
  assert.throws(() => buildGradientGraph(m, { shapes, wrt: ['n'], loss: 'y' }), /cannot differentiate with respect to "n": it holds INT64/);
});

test('an op without a rule on the path is reported by op and node name; off the path it is fine', async () => {
  const g = emptyGraph('cumsum');
  const b = new GraphBuilder(g);
  b.input('x', DataType.FLOAT, [4]);
  const cs = b.op('CumSum', ['x', b.scalar(0, DataType.INT64)], {}, { name: 'running_total' });
  b.output(b.op('ReduceSum', [cs], { keepdims: A.i(0) }, { outputs: ['y'] }), 'y', DataType.FLOAT, []);
  b.output(b.op('ReduceSum', ['x'], { keepdims: A.i(0) }, { outputs: ['z'] }), 'z', DataType.FLOAT, []);
  const m = makeModel(g);
  const shapes = await ortShapes(m, { x: f32([4], [1, 2, 3, 4]) });
  assert.throws(() => buildGradientGraph(m, { shapes, wrt: ['x'], loss: 'y' }), /no gradient rule for op "CumSum" \(node "running_total"\)/);
  assert.doesNotThrow(() => buildGradientGraph(m, { shapes, wrt: ['x'], loss: 'z' }));
});

test('bad requests fail with a message naming the tensor', async () => {
  const m = smallModel();
  const shapes = await ortShapes(m, { x: f32([3], X) });
  assert.throws(() => buildGradientGraph(m, { shapes, wrt: ['nope'], loss: 'loss' }), /"nope": no graph input, initializer or node output/);
  assert.throws(() => buildGradientGraph(m, { shapes, wrt: ['x'] }), /give a scalar `loss` output or `cotangents`/);
});
