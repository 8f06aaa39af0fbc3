/** Finite-difference checks of layout, selection and reduction gradient rules. */
import { test } from 'node:test';
import { A } from '../../../src/core/onnx/builder';
import { DataType } from '../../../src/core/onnx/ir';
import { CheckSpec, In, gradcheck } from './gradcheck';

const x = (...dims: number[]): In => ({ dims });
const i64 = (...values: number[]): In => ({ dims: [values.length], type: DataType.INT64, values });
const s64 = (v: number): In => ({ dims: [], type: DataType.INT64, values: [v] });
const none: In = { dims: [], constant: true };
const f = (...values: number[]): In => ({ dims: [values.length], constant: true, values });

const cases: Array<[string, CheckSpec]> = [
  ['Reshape with -1 and 0', { op: 'Reshape', inputs: [x(2, 3, 4), i64(0, -1, 2)] }],
  ['Flatten axis 2', { op: 'Flatten', inputs: [x(2, 3, 2, 2)], attrs: { axis: A.i(2) } }],
  ['Squeeze axes input', { op: 'Squeeze', inputs: [x(2, 1, 3, 1), i64(1, -1)] }],
  ['Unsqueeze axes input', { op: 'Unsqueeze', inputs: [x(2, 3), i64(0, 2)] }],
  ['Unsqueeze axes attribute (opset 11)', { op: 'Unsqueeze', inputs: [x(2, 3)], attrs: { axes: A.ints([1]) }, opset: 11 }],
  ['Transpose default perm', { op: 'Transpose', inputs: [x(2, 3, 4)] }],
  ['Transpose perm [1,2,0]', { op: 'Transpose', inputs: [x(2, 3, 4)], attrs: { perm: A.ints([1, 2, 0]) } }],
  ['Transpose perm [0,2,1,3]', { op: 'Transpose', inputs: [x(2, 3, 2, 2)], attrs: { perm: A.ints([0, 2, 1, 3]) } }],
  ['Concat axis 1 of three', { op: 'Concat', inputs: [x(2, 1, 3), x(2, 2, 3), x(2, 3, 3)], attrs: { axis: A.i(1) } }],
  ['Concat axis -1', { op: 'Concat', inputs: [x(2, 2), x(2, 3)], attrs: { axis: A.i(-1) } }],
  ['Split equal 2 outputs', { op: 'Split', inputs: [x(2, 6)], attrs: { axis: A.i(1) }, outputs: 2 }],
  ['Split sizes input [1,3,2]', { op: 'Split', inputs: [x(6, 2), i64(1, 3, 2)], outputs: 3 }],
  ['Split sizes attribute (opset 11)', { op: 'Split', inputs: [x(5, 2)], attrs: { split: A.ints([2, 3]) }, outputs: 2, opset: 11 }],
  ['Slice basic', { op: 'Slice', inputs: [x(4, 5), i64(1, 0), i64(3, 4)] }],
  ['Slice negative starts/ends with axes', { op: 'Slice', inputs: [x(3, 6), i64(-4), i64(-1), i64(1)] }],
  ['Slice clamped huge end', { op: 'Slice', inputs: [x(3, 6), i64(2), i64(2 ** 53), i64(-1)] }],
  ['Slice steps 2', { op: 'Slice', inputs: [x(3, 7), i64(1), i64(7), i64(1), i64(2)] }],
  ['Slice steps -1 (reverse)', { op: 'Slice', inputs: [x(3, 5), i64(-1), i64(-(2 ** 53)), i64(1), i64(-1)] }],
  ['Slice steps -2 on two axes', { op: 'Slice', inputs: [x(5, 6), i64(4, 5), i64(0, 0), i64(0, 1), i64(-2, -3)] }],
  // a start past the end of a reversed axis is clamped to its last element (exporters write x[::-2] with a huge start)
  ['Slice steps -2 from a start past the end', { op: 'Slice', inputs: [x(3, 5), i64(100), i64(-(2 ** 53)), i64(1), i64(-2)] }],
  ['Slice attributes (opset 9)', { op: 'Slice', inputs: [x(4, 5)], attrs: { starts: A.ints([1]), ends: A.ints([3]), axes: A.ints([1]) }, opset: 9 }],
  ['Gather axis 0 with repeats', { op: 'Gather', inputs: [x(4, 3), { dims: [2, 2], type: DataType.INT64, values: [1, 3, 1, 0] }] }],
  ['Gather axis 1 negative index', { op: 'Gather', inputs: [x(2, 4, 3), i64(-1, 2)], attrs: { axis: A.i(1) } }],
  ['Gather scalar index axis 2', { op: 'Gather', inputs: [x(2, 3, 4), s64(2)], attrs: { axis: A.i(2) } }],
  ['Gather axis -1', { op: 'Gather', inputs: [x(2, 3, 4), i64(3, 0, 3)], attrs: { axis: A.i(-1) } }],
  ['Gather int32 indices', { op: 'Gather', inputs: [x(5, 2), { dims: [3], type: DataType.INT32, values: [4, 0, 4] }] }],
  ['GatherElements axis 1', { op: 'GatherElements', inputs: [x(2, 3), { dims: [2, 2], type: DataType.INT64, values: [0, 2, 2, 2] }], attrs: { axis: A.i(1) } }],
  ['GatherND rows of a matrix, repeats and a negative index', { op: 'GatherND', inputs: [x(4, 3), { dims: [3, 1], type: DataType.INT64, values: [2, -1, 2] }] }],
  ['GatherND elements', { op: 'GatherND', inputs: [x(3, 4), { dims: [2, 2], type: DataType.INT64, values: [0, 3, 2, 1] }] }],
  ['GatherND batch_dims 1 (CLIP pooler: one position per row)', { op: 'GatherND', inputs: [x(2, 5, 3), { dims: [2, 1], type: DataType.INT64, values: [4, 1] }], attrs: { batch_dims: A.i(1) } }],
  ['GatherND batch_dims 1, two positions per row, one repeated', { op: 'GatherND', inputs: [x(2, 4, 3), { dims: [2, 2, 1], type: DataType.INT64, values: [0, 3, 3, 3] }], attrs: { batch_dims: A.i(1) } }],
  ['Expand [3,1] to [2,3,4]', { op: 'Expand', inputs: [x(3, 1), i64(2, 3, 4)] }],
  ['Expand [1] to [2,3]', { op: 'Expand', inputs: [x(1), i64(2, 3)] }],
  ['Pad constant', { op: 'Pad', inputs: [x(2, 3), i64(0, 1, 2, 0)] }],
  // from opset 18 pads cover only the listed axes
  ['Pad axes input -1 (opset 18)', { op: 'Pad', inputs: [x(2, 3), i64(1, 2), none, i64(-1)], opset: 18 }],
  ['Resize nearest x2 (PyTorch export: asymmetric/floor)', { op: 'Resize', inputs: [x(1, 2, 2, 3), none, f(1, 1, 2, 2)], attrs: { mode: A.s('nearest'), coordinate_transformation_mode: A.s('asymmetric'), nearest_mode: A.s('floor') } }],
  ['Resize nearest x3 by sizes (half_pixel default)', { op: 'Resize', inputs: [x(1, 2, 2, 2), none, none, i64(1, 2, 6, 4)], attrs: { mode: A.s('nearest') } }],
  ['Upsample nearest x2 (opset 9)', { op: 'Upsample', inputs: [x(1, 2, 2, 3), f(1, 1, 2, 2)], attrs: { mode: A.s('nearest') }, opset: 9 }],
  ['Tile repeats [2,1,3]', { op: 'Tile', inputs: [x(2, 3, 2), i64(2, 1, 3)] }],
  ['ReduceSum axes input keepdims 0', { op: 'ReduceSum', inputs: [x(2, 3, 4), i64(1)], attrs: { keepdims: A.i(0) } }],
  ['ReduceSum all axes', { op: 'ReduceSum', inputs: [x(2, 3)] }],
  ['ReduceSum attribute axes (opset 11)', { op: 'ReduceSum', inputs: [x(2, 3, 4)], attrs: { axes: A.ints([0, 2]) }, opset: 11 }],
  ['ReduceMean attribute axes -1', { op: 'ReduceMean', inputs: [x(2, 3, 4)], attrs: { axes: A.ints([-1]) } }],
  ['ReduceMean axes input (opset 18)', { op: 'ReduceMean', inputs: [x(2, 3, 4), i64(0, 1)], attrs: { keepdims: A.i(0) }, opset: 18 }],
  ['ReduceSumSquare', { op: 'ReduceSumSquare', inputs: [x(2, 3, 4)], attrs: { axes: A.ints([1]) } }],
];

for (const [name, spec] of cases) test(name, () => gradcheck(spec).then(() => undefined));
