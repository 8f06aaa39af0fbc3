/** Finite-difference checks of the elementwise gradient rules, with a broadcast-shape matrix. */
import { test } from 'node:test';
import { A } from '../../../src/core/onnx/builder';
import { DataType } from '../../../src/core/onnx/ir';
import { CheckSpec, In, gradcheck } from './gradcheck';

const BROADCAST: Array<[number[], number[]]> = [[[2, 3], [2, 3]], [[2, 3], [3]], [[2, 1, 4], [3, 1]], [[], [2, 3]], [[1], [2, 3]], [[2, 3, 1], [1]]];
const pair = (a: number[], b: number[], ga: In['gen'] = 'any', gb: In['gen'] = 'any'): In[] => [{ dims: a, gen: ga }, { dims: b, gen: gb }];
const cases: Array<[string, CheckSpec]> = [];

for (const [a, b] of BROADCAST) {
  const tag = `[${a}]x[${b}]`;
  cases.push([`Add ${tag}`, { op: 'Add', inputs: pair(a, b) }]);
  cases.push([`Sub ${tag}`, { op: 'Sub', inputs: pair(b, a) }]);
  cases.push([`Mul ${tag}`, { op: 'Mul', inputs: pair(a, b) }]);
  cases.push([`Div ${tag}`, { op: 'Div', inputs: pair(a, b, 'any', 'pos') }]);
  cases.push([`Pow ${tag}`, { op: 'Pow', inputs: pair(a, b, 'pos', 'any') }]);
  cases.push([`Max ${tag}`, { op: 'Max', inputs: pair(a, b), eps: 1e-3 }]);
  cases.push([`Min ${tag}`, { op: 'Min', inputs: pair(b, a), eps: 1e-3 }]);
}

const u = (gen: In['gen'] = 'any'): In[] => [{ dims: [2, 3, 2], gen }];
const unary: Array<[string, In['gen']]> = [
  ['Sqrt', 'pos'], ['Exp', 'any'], ['Log', 'pos'], ['Neg', 'any'], ['Abs', 'away'], ['Reciprocal', 'away'], ['Erf', 'any'],
  ['Sigmoid', 'any'], ['Tanh', 'any'], ['Relu', 'away'], ['LeakyRelu', 'away'], ['Softplus', 'any'], ['Sin', 'any'], ['Cos', 'any'],
  ['Identity', 'any'], ['Dropout', 'any'],
];
for (const [op, gen] of unary) cases.push([op, { op, inputs: u(gen) }]);

cases.push(
  ['Pow with a constant int exponent', { op: 'Pow', inputs: [{ dims: [2, 3], gen: 'pos' }, { dims: [], type: DataType.INT64, values: [3] }] }],
  ['Pow 0.5 (sqrt-like)', { op: 'Pow', inputs: [{ dims: [4], gen: 'pos' }, { dims: [], constant: true, values: [0.5] }] }],
  ['Gelu exact (opset 20)', { op: 'Gelu', inputs: u(), opset: 20 }],
  ['Gelu tanh (opset 20)', { op: 'Gelu', inputs: u(), attrs: { approximate: A.s('tanh') }, opset: 20 }],
  ['Clip min/max inputs', { op: 'Clip', inputs: [{ dims: [3, 4], gen: 'away' }, { dims: [], constant: true, values: [-0.5] }, { dims: [], constant: true, values: [0.6] }], eps: 1e-3 }],
  ['Clip max only', { op: 'Clip', inputs: [{ dims: [3, 4], gen: 'away' }, { dims: [], constant: true }, { dims: [], constant: true, values: [0.5] }], eps: 1e-3 }],
  ['Clip attrs (opset 10)', { op: 'Clip', inputs: [{ dims: [3, 4], gen: 'away' }], attrs: { min: A.f(-0.5), max: A.f(0.5) }, opset: 10, eps: 1e-3 }],
  ['Where [2,3] cond, [3] x, [] y', { op: 'Where', inputs: [{ dims: [2, 3], type: DataType.BOOL, values: [1, 0, 1, 0, 0, 1] }, { dims: [3] }, { dims: [] }] }],
  ['Sum of three with broadcasting', { op: 'Sum', inputs: [{ dims: [2, 3] }, { dims: [3] }, { dims: [2, 1] }] }],
  ['Mean of two', { op: 'Mean', inputs: pair([2, 3], [2, 3]) }],
  ['Max of three', { op: 'Max', inputs: [{ dims: [2, 3] }, { dims: [3] }, { dims: [2, 1] }], eps: 1e-3 }],
  ['Cast float to double', { op: 'Cast', inputs: u(), attrs: { to: A.i(DataType.DOUBLE) } }],
);

for (const [name, spec] of cases) test(name, () => gradcheck(spec).then(() => undefined));
