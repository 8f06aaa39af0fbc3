/** Static shape rules for elementwise, reduction, normalization and linear-algebra ops (one rule per op). */
import { DataType, Node } from './ir';
import {
  TensorInfo, TensorShape, attrInt, attrInts, attrString, broadcastShapes, normAxis, where, windowOut,
} from './shapeUtil';

/** What a shape rule sees: the node, the opset, and the inputs' shapes (and values when constant). */
export interface ShapeCtx {
  node: Node;
  opset: number;
  /** undefined where an optional input is omitted. */
  inputs: Array<TensorInfo | undefined>;
  /** Input `i`, which must be present. */
  input(i: number): TensorInfo;
  /** Integer values of input `i`; throws when they are not known constants. `what` names it in the error. */
  ints(i: number, what: string): number[];
  /** Like `ints`, but undefined when the input is omitted. */
  optInts(i: number, what: string): number[] | undefined;
  /** Float values of input `i` (undefined when omitted or empty); throws when not constant. */
  optFloats(i: number, what: string): number[] | undefined;
}

export type ShapeRule = (c: ShapeCtx) => TensorShape[];

const same: ShapeRule = (c) => [{ elemType: c.input(0).elemType, dims: [...c.input(0).dims] }];
const sameAs = (elemType: DataType): ShapeRule => (c) => [{ elemType, dims: [...c.input(0).dims] }];
const broadcast = (outType?: DataType): ShapeRule => (c) => {
  const present = c.inputs.filter((x): x is TensorInfo => !!x);
  return [{ elemType: outType ?? present[0].elemType, dims: broadcastShapes(present.map((x) => x.dims), c.node) }];
};

/** Reduced dims: `axes` empty means all (unless noop). */
function reduceDims(c: ShapeCtx, dims: number[], axes: number[] | undefined): number[] {
  const keep = attrInt(c.node, 'keepdims', 1) === 1;
  if (!axes || axes.length === 0) {
    if (attrInt(c.node, 'noop_with_empty_axes', 0) === 1) return [...dims];
    axes = dims.map((_, i) => i);
  }
  const set = new Set(axes.map((a) => normAxis(a, dims.length, c.node)));
  const out: number[] = [];
  dims.forEach((d, i) => { if (!set.has(i)) out.push(d); else if (keep) out.push(1); });
  return out;
}

/** Reduce ops take `axes` as an input from this opset on (ReduceSum moved at 13, the rest at 18). */
const reduce = (axesInputFrom: number): ShapeRule => (c) => {
  const x = c.input(0);
  const axes = c.opset >= axesInputFrom ? c.optInts(1, 'axes') : attrInts(c.node, 'axes');
  return [{ elemType: x.elemType, dims: reduceDims(c, x.dims, axes) }];
};

const argReduce: ShapeRule = (c) => {
  const x = c.input(0);
  const axis = normAxis(attrInt(c.node, 'axis', 0), x.dims.length, c.node);
  const keep = attrInt(c.node, 'keepdims', 1) === 1;
  const dims = keep ? x.dims.map((d, i) => (i === axis ? 1 : d)) : x.dims.filter((_, i) => i !== axis);
  return [{ elemType: DataType.INT64, dims }];
};

const matMul: ShapeRule = (c) => {
  const a = c.input(0).dims, b = c.input(1).dims;
  if (a.length === 0 || b.length === 0) throw new Error(`${where(c.node)}: MatMul of a scalar`);
  const a2 = a.length === 1 ? [1, a[0]] : a, b2 = b.length === 1 ? [b[0], 1] : b;
  const k1 = a2[a2.length - 1], k2 = b2[b2.length - 2];
  if (k1 !== k2) throw new Error(`${where(c.node)}: inner dims differ ([${a}] x [${b}])`);
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)], c.node);
  const out = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]);
  if (b.length > 1) out.push(b2[b2.length - 1]);
  return [{ elemType: c.input(0).elemType, dims: out }];
};

const gemm: ShapeRule = (c) => {
  const a = c.input(0).dims, b = c.input(1).dims;
  const [m, k1] = attrInt(c.node, 'transA', 0) ? [a[1], a[0]] : [a[0], a[1]];
  const [k2, n] = attrInt(c.node, 'transB', 0) ? [b[1], b[0]] : [b[0], b[1]];
  if (k1 !== k2) throw new Error(`${where(c.node)}: inner dims differ ([${a}] x [${b}])`);
  return [{ elemType: c.input(0).elemType, dims: [m, n] }];
};

/** Spatial output dims of Conv / pooling from attributes and kernel. */
function windowDims(c: ShapeCtx, inSpatial: number[], kernel: number[]): number[] {
  const nd = inSpatial.length;
  const st = attrInts(c.node, 'strides') ?? new Array(nd).fill(1);
  const dil = attrInts(c.node, 'dilations') ?? new Array(nd).fill(1);
  const pads = attrInts(c.node, 'pads') ?? new Array(2 * nd).fill(0);
  const autoPad = attrString(c.node, 'auto_pad', 'NOTSET');
  const ceil = attrInt(c.node, 'ceil_mode', 0) === 1;
  return inSpatial.map((d, i) => windowOut(d, kernel[i], st[i], dil[i], pads[i], pads[i + nd], autoPad, ceil));
}

const conv: ShapeRule = (c) => {
  const x = c.input(0).dims, w = c.input(1).dims;
  const group = attrInt(c.node, 'group', 1);
  if (x[1] !== w[1] * group) throw new Error(`${where(c.node)}: input has ${x[1]} channels but weight [${w}] with group ${group} expects ${w[1] * group}`);
  const kernel = attrInts(c.node, 'kernel_shape') ?? w.slice(2);
  return [{ elemType: c.input(0).elemType, dims: [x[0], w[0], ...windowDims(c, x.slice(2), kernel)] }];
};

const convTranspose: ShapeRule = (c) => {
  const x = c.input(0).dims, w = c.input(1).dims, nd = x.length - 2;
  const group = attrInt(c.node, 'group', 1);
  const kernel = attrInts(c.node, 'kernel_shape') ?? w.slice(2);
  const st = attrInts(c.node, 'strides') ?? new Array(nd).fill(1);
  const dil = attrInts(c.node, 'dilations') ?? new Array(nd).fill(1);
  const outPad = attrInts(c.node, 'output_padding') ?? new Array(nd).fill(0);
  const pads = attrInts(c.node, 'pads') ?? new Array(2 * nd).fill(0);
  const autoPad = attrString(c.node, 'auto_pad', 'NOTSET');
  const given = attrInts(c.node, 'output_shape');
  const spatial = x.slice(2).map((d, i) => {
    if (given) return given[given.length - nd + i];
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return d * st[i];
    return st[i] * (d - 1) + outPad[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[i + nd];
  });
  return [{ elemType: c.input(0).elemType, dims: [x[0], w[1] * group, ...spatial] }];
};

const pool: ShapeRule = (c) => {
  const x = c.input(0).dims;
  const kernel = attrInts(c.node, 'kernel_shape');
  if (!kernel) throw new Error(`${where(c.node)}: kernel_shape attribute is required`);
  const out = { elemType: c.input(0).elemType, dims: [x[0], x[1], ...windowDims(c, x.slice(2), kernel)] };
  return [out, { elemType: DataType.INT64, dims: out.dims }];
};

const globalPool: ShapeRule = (c) => [{ elemType: c.input(0).elemType, dims: c.input(0).dims.map((d, i) => (i < 2 ? d : 1)) }];

const layerNorm: ShapeRule = (c) => {
  const x = c.input(0);
  const axis = normAxis(attrInt(c.node, 'axis', -1), x.dims.length, c.node);
  const stat = { elemType: DataType.FLOAT, dims: x.dims.map((d, i) => (i < axis ? d : 1)) };
  return [{ elemType: x.elemType, dims: [...x.dims] }, stat, stat];
};

const batchNorm: ShapeRule = (c) => {
  const x = c.input(0), ch = { elemType: x.elemType, dims: [x.dims[1]] };
  return [{ elemType: x.elemType, dims: [...x.dims] }, ch, ch, ch, ch];
};

const softmax: ShapeRule = (c) => {
  // opset < 13 coerces to 2-D at `axis` (default 1); 13+ is per-axis (default -1). The shape is the input's either way.
  const x = c.input(0);
  normAxis(attrInt(c.node, 'axis', c.opset >= 13 ? -1 : 1), Math.max(x.dims.length, 1), c.node);
  return same(c);
};

/** Einsum with explicit or implicit output; `...` broadcasts the leading dims. */
const einsum: ShapeRule = (c) => {
  const eq = attrString(c.node, 'equation', '').replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->');
  const terms = lhs.split(',');
  const size = new Map<string, number>();
  let ell: number[] = [];
  terms.forEach((t, k) => {
    const dims = c.input(k).dims;
    const e = t.indexOf('...');
    const letters = t.replace('...', '');
    const nEll = e >= 0 ? dims.length - letters.length : 0;
    if (e >= 0) ell = broadcastShapes([ell, dims.slice(e, e + nEll)], c.node);
    const rest = e >= 0 ? [...dims.slice(0, e), ...dims.slice(e + nEll)] : dims;
    if (rest.length !== letters.length) throw new Error(`${where(c.node)}: term "${t}" does not match input rank ${dims.length}`);
    [...letters].forEach((ch, i) => {
      const prev = size.get(ch);
      if (prev !== undefined && prev !== rest[i] && prev !== 1 && rest[i] !== 1) throw new Error(`${where(c.node)}: index ${ch} has sizes ${prev} and ${rest[i]}`);
      size.set(ch, Math.max(prev ?? 1, rest[i]));
    });
  });
  let out = rhs;
  if (out === undefined) {
    const counts = new Map<string, number>();
    for (const ch of lhs.replace(/[^a-zA-Z]/g, '')) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    out = (lhs.includes('...') ? '...' : '') + [...counts].filter(([, n]) => n === 1).map(([ch]) => ch).sort().join('');
  }
  const dims: number[] = [];
  const e = out.indexOf('...');
  [...out.replace('...', '')].forEach((ch, i) => { if (i === e) dims.push(...ell); dims.push(size.get(ch)!); });
  if (e >= 0 && e >= out.replace('...', '').length) dims.push(...ell);
  return [{ elemType: c.input(0).elemType, dims }];
};

const UNARY = [
  'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Erf', 'Sigmoid', 'Tanh', 'Relu', 'Gelu', 'Sin', 'Cos', 'Tan', 'Asin', 'Acos',
  'Atan', 'Sinh', 'Cosh', 'Floor', 'Ceil', 'Round', 'Reciprocal', 'Sign', 'Softplus', 'Softsign', 'LeakyRelu', 'Elu',
  'Selu', 'Celu', 'HardSigmoid', 'HardSwish', 'Mish', 'Identity', 'Clip', 'Trilu', 'CumSum', 'InstanceNormalization',
  'GroupNormalization', 'LpNormalization', 'MeanVarianceNormalization', 'Hardmax', 'ThresholdedRelu', 'BitwiseNot',
];
const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Max', 'Min', 'Sum', 'Mean', 'PRelu', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor'];
const COMPARE = ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor'];

/** Shape rules for elementwise, reduction, normalization and linear-algebra ops. */
export const MATH_RULES: Record<string, ShapeRule> = {
  ...Object.fromEntries(UNARY.map((op) => [op, same])),
  ...Object.fromEntries(BINARY.map((op) => [op, broadcast()])),
  ...Object.fromEntries(COMPARE.map((op) => [op, broadcast(DataType.BOOL)])),
  Not: sameAs(DataType.BOOL),
  IsNaN: sameAs(DataType.BOOL),
  IsInf: sameAs(DataType.BOOL),
  Where: (c) => [{ elemType: c.input(1).elemType, dims: broadcastShapes([0, 1, 2].map((i) => c.input(i).dims), c.node) }],
  Softmax: softmax,
  LogSoftmax: softmax,
  Dropout: (c) => [same(c)[0], { elemType: DataType.BOOL, dims: [...c.input(0).dims] }],
  ReduceSum: reduce(13),
  ...Object.fromEntries(['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
    'ReduceLogSumExp', 'ReduceSumSquare'].map((op) => [op, reduce(18)])),
  ArgMax: argReduce,
  ArgMin: argReduce,
  MatMul: matMul,
  Gemm: gemm,
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: pool,
  AveragePool: pool,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  LayerNormalization: layerNorm,
  BatchNormalization: batchNorm,
  Einsum: einsum,
};
