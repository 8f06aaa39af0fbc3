/** Finite-difference checks of MatMul, Gemm, Conv, ConvTranspose, Softmax and the normalizations. */
import { test } from 'node:test';
import { A } from '../../../src/core/onnx/builder';
import { CheckSpec, In, gradcheck } from './gradcheck';

const t = (...dims: number[][]): In[] => dims.map((d) => ({ dims: d }));
const pos = (d: number[]): In => ({ dims: d, gen: 'pos' });
const ints = A.ints;

const cases: Array<[string, CheckSpec]> = [
  ['MatMul [3,4]x[4,5]', { op: 'MatMul', inputs: t([3, 4], [4, 5]) }],
  ['MatMul [2,3,4]x[4,5] (2-D weight)', { op: 'MatMul', inputs: t([2, 3, 4], [4, 5]) }],
  ['MatMul [4]x[4,5]', { op: 'MatMul', inputs: t([4], [4, 5]) }],
  ['MatMul [3,4]x[4]', { op: 'MatMul', inputs: t([3, 4], [4]) }],
  ['MatMul [4]x[4]', { op: 'MatMul', inputs: t([4], [4]) }],
  ['MatMul [2,1,3,4]x[3,4,2]', { op: 'MatMul', inputs: t([2, 1, 3, 4], [3, 4, 2]) }],
  ['MatMul [1,3,4]x[2,4,5]', { op: 'MatMul', inputs: t([1, 3, 4], [2, 4, 5]) }],
  ['MatMul [2,3,4]x[4] batched vector', { op: 'MatMul', inputs: t([2, 3, 4], [4]) }],
  ['Gemm plain with C [5]', { op: 'Gemm', inputs: t([3, 4], [4, 5], [5]) }],
  ['Gemm transA transB alpha beta, C [3,1]', { op: 'Gemm', inputs: t([4, 3], [5, 4], [3, 1]), attrs: { transA: A.i(1), transB: A.i(1), alpha: A.f(0.7), beta: A.f(1.3) } }],
  ['Gemm transB (Linear), C scalar', { op: 'Gemm', inputs: t([3, 4], [5, 4], []), attrs: { transB: A.i(1) } }],
  ['Gemm transA, no C', { op: 'Gemm', inputs: t([4, 3], [4, 5]), attrs: { transA: A.i(1), alpha: A.f(2) } }],
  ['Conv 3x3 with bias', { op: 'Conv', inputs: t([1, 2, 5, 5], [3, 2, 3, 3], [3]) }],
  ['Conv stride 2 pads 1', { op: 'Conv', inputs: t([2, 2, 6, 6], [3, 2, 3, 3], [3]), attrs: { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) } }],
  ['Conv stride 2 dropping a row (7x7)', { op: 'Conv', inputs: t([1, 2, 7, 7], [2, 2, 2, 2]), attrs: { strides: ints([2, 2]) } }],
  ['Conv dilation 2', { op: 'Conv', inputs: t([1, 2, 7, 7], [2, 2, 3, 3], [2]), attrs: { dilations: ints([2, 2]), pads: ints([1, 1, 1, 1]) } }],
  ['Conv groups 2', { op: 'Conv', inputs: t([2, 4, 5, 5], [6, 2, 3, 3], [6]), attrs: { group: A.i(2), pads: ints([1, 1, 1, 1]) } }],
  ['Conv depthwise stride 2', { op: 'Conv', inputs: t([1, 3, 6, 6], [3, 1, 3, 3]), attrs: { group: A.i(3), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) } }],
  ['Conv 1x1 no bias', { op: 'Conv', inputs: t([2, 3, 4, 4], [5, 3, 1, 1]) }],
  ['Conv asymmetric pads', { op: 'Conv', inputs: t([1, 2, 5, 4], [2, 2, 3, 2]), attrs: { pads: ints([0, 1, 2, 0]) } }],
  ['Conv SAME_UPPER stride 2', { op: 'Conv', inputs: t([1, 2, 6, 5], [2, 2, 3, 3]), attrs: { auto_pad: A.s('SAME_UPPER'), strides: ints([2, 2]) } }],
  // SAME_LOWER puts the odd padding row first (total 1 on H here), SAME_UPPER last
  ['Conv SAME_LOWER stride 2', { op: 'Conv', inputs: t([1, 2, 6, 5], [2, 2, 3, 3]), attrs: { auto_pad: A.s('SAME_LOWER'), strides: ints([2, 2]) } }],
  ['Conv 1-D stride 2', { op: 'Conv', inputs: t([2, 3, 9], [4, 3, 3], [4]), attrs: { strides: ints([2]), pads: ints([1, 1]) } }],
  ['ConvTranspose stride 2 output_padding 1', { op: 'ConvTranspose', inputs: t([1, 2, 3, 3], [2, 3, 3, 3], [3]), attrs: { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), output_padding: ints([1, 1]) } }],
  ['ConvTranspose groups 2 dilation 2', { op: 'ConvTranspose', inputs: t([1, 4, 3, 3], [4, 1, 2, 2]), attrs: { group: A.i(2), dilations: ints([2, 2]) } }],
  ['Softmax axis -1', { op: 'Softmax', inputs: t([2, 3, 4]) }],
  ['Softmax axis 1', { op: 'Softmax', inputs: t([2, 3, 4]), attrs: { axis: A.i(1) } }],
  ['Softmax axis 0', { op: 'Softmax', inputs: t([2, 3, 4]), attrs: { axis: A.i(0) } }],
  ['Softmax opset 11 (flattened tail from axis 1)', { op: 'Softmax', inputs: t([2, 3, 4]), opset: 11 }],
  ['LogSoftmax axis -1', { op: 'LogSoftmax', inputs: t([2, 3, 4]) }],
  ['LogSoftmax opset 11 axis 1', { op: 'LogSoftmax', inputs: t([2, 3, 4]), attrs: { axis: A.i(1) }, opset: 11 }],
  ['InstanceNormalization', { op: 'InstanceNormalization', inputs: [{ dims: [2, 3, 3, 4] }, pos([3]), { dims: [3] }] }],
  // a scale stored as an initializer: only an all-ones one (TorchScript's GroupNorm) may be skipped in the backward
  ['InstanceNormalization with a constant non-unit scale', { op: 'InstanceNormalization', inputs: [{ dims: [2, 3, 3, 4] }, { dims: [3], constant: true, values: [0.5, 2, -1.5] }, { dims: [3] }] }],
  // before opset 17 the statistics are written out as ReduceMean/Sub/Sqrt nodes (opset-14 exports are common)
  ['InstanceNormalization opset 14', { op: 'InstanceNormalization', inputs: [{ dims: [2, 3, 3, 4] }, pos([3]), { dims: [3] }], opset: 14 }],
  ['LayerNormalization axis -1', { op: 'LayerNormalization', inputs: [{ dims: [2, 3, 4] }, pos([4]), { dims: [4] }] }],
  // an epsilon large against the variance: the backward must use the node's, not the default 1e-5
  ['LayerNormalization epsilon 0.1', { op: 'LayerNormalization', inputs: [{ dims: [2, 3, 4] }, pos([4]), { dims: [4] }], attrs: { epsilon: A.f(0.1) } }],
  ['LayerNormalization axis 1, no bias', { op: 'LayerNormalization', inputs: [{ dims: [2, 3, 4] }, pos([3, 4])], attrs: { axis: A.i(1), epsilon: A.f(1e-3) } }],
  ['GroupNormalization per-channel scale (opset 21)', { op: 'GroupNormalization', inputs: [{ dims: [2, 4, 3, 3] }, pos([4]), { dims: [4] }], attrs: { num_groups: A.i(2) }, opset: 21 }],
  ['GroupNormalization per-group scale (opset 18)', { op: 'GroupNormalization', inputs: [{ dims: [2, 4, 3, 3] }, pos([2]), { dims: [2] }], attrs: { num_groups: A.i(2) }, opset: 18 }],
];

for (const [name, spec] of cases) test(name, () => gradcheck(spec).then(() => undefined));
