// Constant folding: the TypeScript evaluator agrees with onnxruntime, big tensors are left alone, dead code goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { A, GraphBuilder } from '../../../src/core/onnx/builder';
import { eliminateDeadNodes } from '../../../src/core/onnx/dce';
import { DataType, emptyGraph, makeModel, makeTensor, toNumbers } from '../../../src/core/onnx/ir';
import { foldConstants } from '../../../src/core/onnx/fold';
import { analyzeGraph } from '../../../src/core/onnx/shapes';
import { specialize } from '../../../src/core/onnx/specialize';
import { randomFloats } from './fixtures';
import { runModel } from './ortShapes';

const { FLOAT: F, INT64: I64 } = DataType;

test('the evaluator computes the integer/shape ops exactly as onnxruntime does', async () => {
  const g = emptyGraph();
  const b = new GraphBuilder(g);
  const x = b.input('x', F, [2, 3, 5]);
  const i = (v: number[], dims = [v.length]) => b.constI64(v, dims);
  const f = (v: number[], dims = [v.length]) => b.constF(v, dims);
  const shape = b.op('Shape', [x]);
  const m = i([-7, 7, 9, -9, 5, 0], [2, 3]);
  const outs = [
    shape, b.op('Shape', [x], { start: A.i(-2) }), b.op('Size', [x]),
    b.op('Gather', [shape, i([-1, 0])]), b.op('Gather', [m, i([1, 0, -1], [3, 1])], { axis: A.i(1) }),
    b.op('Unsqueeze', [b.op('Gather', [shape, b.constI64([1], [])]), i([0])]),
    b.op('Squeeze', [i([4], [1, 1]), i([0])]),
    b.op('Concat', [m, i([1, 2], [2, 1])], { axis: A.i(1) }),
    b.op('Cast', [f([-2.7, 2.7, 0.5, -0.5])], { to: A.i(I64) }),
    b.op('Cast', [i([0, 3, -1])], { to: A.i(DataType.BOOL) }),
    b.op('Slice', [m, i([-1, 4]), i([-100, 0]), i([0, 1]), i([-1, -2])]),
    b.op('Slice', [shape, i([1]), i([9223372036854775807])]),
    b.op('Reshape', [m, i([0, -1, 1])]),
    b.op('Add', [m, i([1, 2, 3])]), b.op('Sub', [m, i([1], [])]), b.op('Mul', [m, i([2, 3], [2, 1])]),
    b.op('Div', [m, i([2], [])]), b.op('Div', [f([-7, 1, 3]), f([2], [])]),
    b.op('Mod', [m, i([4, -4, 3])]), b.op('Mod', [m, i([4, -4, 3])], { fmod: A.i(1) }),
    b.op('Pow', [f([2, 3, 4]), f([0.5], [])]),
    b.op('Where', [b.op('Equal', [m, i([7, 7, 7])]), m, i([100], [])]),
    b.op('ConstantOfShape', [i([2, 2])], { value: A.t(makeTensor('v', I64, [1], [5])) }),
    b.op('ConstantOfShape', [i([3])]),
    b.op('Range', [b.constI64([1], []), b.constI64([10], []), b.constI64([3], [])]),
    b.op('Range', [b.scalar(0), b.scalar(1), b.scalar(0.3)]),
    b.op('Expand', [i([1, 2, 3]), i([2, 1])]), b.op('Tile', [m, i([2, 1])]),
    b.op('Transpose', [m]), ...b.nodeN('Split', [m, i([1, 2])], { axis: A.i(1) }, { outputs: 2 }),
    b.op('ReduceSum', [m, i([1])]), b.op('ReduceProd', [m], { axes: A.ints([0]), keepdims: A.i(0) }), b.op('ReduceMax', [m], { keepdims: A.i(0) }),
    b.op('Sqrt', [f([4, 2])]), b.op('Floor', [f([-1.5, 1.5])]), b.op('Round', [f([2.5, -0.5, 1.5, 0.4])]),
    b.op('Neg', [m]), b.op('Abs', [m]), b.op('Sign', [f([-3, 0, 2])]), b.op('Exp', [f([0, 1])]), b.op('Log', [f([1, 10])]),
    b.op('Not', [b.op('LessOrEqual', [m, i([0], [])])]), b.op('And', [b.op('Less', [m, i([5], [])]), b.op('Greater', [m, i([-8], [])])]),
    b.op('IsNaN', [b.op('Div', [f([0, 1]), f([0], [])])]),
    b.op('Max', [m, i([0], [])]), b.op('Min', [m, i([1, 2, 3]), i([2], [])]), b.op('Clip', [m, i([-1], []), i([6], [])]),
  ];
  for (const o of outs) g.outputs.push({ name: o, elemType: F, shape: null });
  const infos = analyzeGraph(g, 17);
  for (const o of g.outputs) o.elemType = infos.get(o.name)!.elemType;
  const res = await runModel(makeModel(g), { x: new ort.Tensor('float32', randomFloats(30), [2, 3, 5]) });
  for (const o of outs) {
    const mine = infos.get(o)!;
    assert.ok(mine.value, `${o} was evaluated`);
    assert.deepEqual(mine.dims, [...res[o].dims].map(Number), `dims of ${o}`);
    const want = Array.from(res[o].data as ArrayLike<number | bigint | boolean>, Number);
    const got = toNumbers(mine.value!);
    want.forEach((w, k) => assert.ok(Object.is(w, got[k]) || Math.abs(w - got[k]) <= 1e-6 * Math.abs(w), `${o}[${k}]: ${got[k]} vs ORT ${w}`));
  }
});

test('an exporter-style Shape/Gather/Unsqueeze/Concat chain folds into one Reshape with the same result', async () => {
  const g = emptyGraph();
  const b = new GraphBuilder(g);
  const x = b.input('x', F, ['batch', 3, 'h', 'w']);
  const sh = b.op('Shape', [x]);
  const n = b.op('Unsqueeze', [b.op('Gather', [sh, b.constI64([0], [])]), b.constI64([0])]);
  const c = b.op('Unsqueeze', [b.op('Gather', [sh, b.op('Constant', [], { value: A.t(makeTensor('', I64, [], [1])) })]), b.constI64([0])]);
  const y = b.op('Reshape', [x, b.op('Concat', [n, c, b.constI64([-1])], { axis: A.i(0) })]);
  b.op('Relu', [y], {}, { outputs: ['y'] });
  g.outputs.push({ name: 'y', elemType: F, shape: null });
  const model = makeModel(g);
  const { model: spec, nodesAfter, shapes } = specialize(model, { dims: { batch: 2, h: 4, w: 5 } });
  assert.deepEqual(spec.graph.nodes.map((nd) => nd.opType), ['Reshape', 'Relu']);
  assert.equal(nodesAfter, 2);
  assert.deepEqual(toNumbers(spec.graph.initializers.get(spec.graph.nodes[0].inputs[1])!), [2, 3, -1]);
  assert.deepEqual(shapes.get('y')!.dims, [2, 3, 20]);
  const feed = { x: new ort.Tensor('float32', randomFloats(120), [2, 3, 4, 5]) };
  const [a, r] = [await runModel(model, feed), await runModel(spec, feed)];
  assert.deepEqual(Array.from(r.y.data as Float32Array), Array.from(a.y.data as Float32Array));
});

test('tensors above the size limit are not folded, so big weights are never duplicated', () => {
  const g = emptyGraph();
  const b = new GraphBuilder(g);
  const w = b.initializer(makeTensor('w', F, [300, 300], new Float32Array(90000)), true);
  const big = b.op('ConstantOfShape', [b.constI64([300, 300])], { value: A.t(makeTensor('v', F, [1], [1])) });
  g.outputs.push({ name: b.op('Mul', [w, b.scalar(2)]), elemType: F, shape: null });
  g.outputs.push({ name: b.op('Add', [big, b.constF([1])]), elemType: F, shape: null });
  const r = foldConstants(g, 17);
  assert.equal(r.folded, 0);
  assert.deepEqual(g.nodes.map((n) => n.opType), ['ConstantOfShape', 'Mul', 'Add']);
  assert.equal(g.initializers.get('w')!.data.length, 90000);
  const r2 = foldConstants(g, 17, { maxFoldElements: 100000 });
  assert.equal(r2.folded, 1, 'ConstantOfShape folds under a higher limit (graph outputs stay nodes)');
  assert.equal(toNumbers(g.initializers.get(big)!)[89999], 1);
});

test('preserved initializers are never folded through', () => {
  const g = emptyGraph();
  const b = new GraphBuilder(g);
  const w = b.initializer(makeTensor('lora_A', F, [2, 2], [1, 2, 3, 4]), true);
  const t = b.op('Transpose', [w]);
  g.outputs.push({ name: b.op('Relu', [t]), elemType: F, shape: null });
  assert.equal(foldConstants(g, 17, { preserve: new Set(['lora_A']) }).folded, 0);
  assert.equal(foldConstants(g, 17).folded, 1, 'Transpose folds; Relu produces a graph output so stays');
});

test('eliminateDeadNodes keeps exactly what the kept outputs need', () => {
  const g = emptyGraph();
  const b = new GraphBuilder(g);
  const x = b.input('x', F, [2]);
  const used = b.op('Relu', [x]);
  const unused = b.op('Sigmoid', [b.op('Exp', [x, b.constF([3])])]);
  g.outputs.push({ name: b.op('Neg', [used]), elemType: F, shape: null });
  assert.equal(eliminateDeadNodes(g), 2);
  assert.deepEqual(g.nodes.map((n) => n.opType), ['Relu', 'Neg']);
  assert.equal(g.initializers.size, 0, 'the constant only the dead nodes read is gone');
  assert.equal(eliminateDeadNodes(g, [used]), 1);
  assert.ok(!g.nodes.some((n) => n.outputs.includes(unused)));
});

test('eliminateDeadNodes keeps a producer listed after its reader', () => {
  // passes that append nodes (lowering, gradients) leave graphs out of order until they sort them
  const g = emptyGraph();
  const b = new GraphBuilder(g);
  const x = b.input('x', F, [2]);
  g.nodes.push({ name: 'neg', opType: 'Neg', domain: '', inputs: ['r'], outputs: ['y'], attrs: {} });
  g.nodes.push({ name: 'relu', opType: 'Relu', domain: '', inputs: [x], outputs: ['r'], attrs: {} });
  g.outputs.push({ name: 'y', elemType: F, shape: null });
  assert.equal(eliminateDeadNodes(g), 0);
  assert.deepEqual(g.nodes.map((n) => n.name), ['neg', 'relu']);
});

test('eliminateDeadNodes keeps what an If branch reads from the enclosing graph, and the model still runs', async () => {
  const g = emptyGraph();
  const b = new GraphBuilder(g);
  const x = b.input('x', F, [2]);
  const r = b.op('Relu', [x]);
  const cond = b.op('Greater', [b.op('ReduceSum', [x], { keepdims: A.i(0) }), b.scalar(0)]);
  // each branch is a subgraph without inputs: it names the outer `r` and `x` directly
  const branch = (op: string, input: string) => {
    const s = emptyGraph(op);
    s.nodes.push({ name: `${op}_in_branch`, opType: op, domain: '', inputs: [input], outputs: [`${op}_out`], attrs: {} });
    s.outputs.push({ name: `${op}_out`, elemType: F, shape: [2] });
    return { type: 'graph' as const, value: s };
  };
  b.op('If', [cond], { then_branch: branch('Neg', r), else_branch: branch('Identity', x) }, { outputs: ['y'] });
  g.outputs.push({ name: 'y', elemType: F, shape: [2] });
  eliminateDeadNodes(g);
  assert.ok(g.nodes.some((n) => n.outputs.includes(r)), 'the Relu the then-branch reads stays');
  const res = await runModel(makeModel(g), { x: new ort.Tensor('float32', Float32Array.of(3, 0.5), [2]) });
  assert.deepEqual(Array.from(res.y.data as Float32Array), [-3, -0.5]);
});
