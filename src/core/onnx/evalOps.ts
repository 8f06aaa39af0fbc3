/** A small TypeScript evaluator for the integer/shape subgraphs exporters emit (one rule per op, values only). */
import { DataType, Tensor, allocData, numel } from './ir';
import { ShapeCtx } from './shapeRules';
import { sliceParams, splitSizes } from './shapeRulesTensor';
import { TensorShape, attrFloat, attrInt, attrInts, constantAttrTensor, normAxis, strides } from './shapeUtil';
import { float32ToHalfBits, halfBitsToFloat32 } from '../safetensors';

/** Elements of a known tensor as plain numbers (row-major), with its dims. */
export interface Arr {
  dims: number[];
  v: number[];
}

/** Computes each output's row-major values; output dims and types come from the shape rule (`outs`). */
export type EvalRule = (x: Array<Arr | undefined>, c: ShapeCtx, outs: TensorShape[]) => number[][];

const INT_TYPES = new Set([DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64, DataType.BOOL]);

/** True for integer and bool element types (Div truncates, Mod follows the divisor's sign). */
export function isIntType(t: DataType): boolean {
  return INT_TYPES.has(t);
}

/** Tensor values as numbers (int64 via Number, fine for shapes and indices; fp16 widened). */
export function arrOf(t: Tensor): Arr {
  const v = t.dataType === DataType.FLOAT16 ? Array.from(halfBitsToFloat32(t.data as Uint16Array)) : Array.from(t.data as ArrayLike<number | bigint>, Number);
  return { dims: t.dims, v };
}

const I64_MAX = 9223372036854775807n, I64_MIN = -9223372036854775808n;

/** Packs numbers into a tensor of `dataType` (ints truncate, int64 saturates, bool is `!= 0`). */
export function tensorOf(name: string, dataType: DataType, dims: number[], v: number[]): Tensor {
  const n = numel(dims);
  if (v.length !== n) throw new Error(`evaluator produced ${v.length} values for ${name} of shape [${dims}]`);
  let data;
  if (dataType === DataType.INT64 || dataType === DataType.UINT64) {
    const a = allocData(dataType, n) as BigInt64Array;
    for (let i = 0; i < n; i++) {
      const x = v[i];
      a[i] = Number.isNaN(x) ? 0n : x >= 9.2e18 ? I64_MAX : x <= -9.2e18 ? I64_MIN : BigInt(Math.trunc(x));
    }
    data = a;
  } else if (dataType === DataType.FLOAT16) {
    data = float32ToHalfBits(Float32Array.from(v));
  } else if (dataType === DataType.BOOL) {
    data = Uint8Array.from(v, (x) => (x !== 0 ? 1 : 0));
  } else {
    const a = allocData(dataType, n) as Float32Array;
    const trunc = isIntType(dataType);
    for (let i = 0; i < n; i++) a[i] = trunc ? Math.trunc(v[i]) : v[i];
    data = a;
  }
  return { name, dataType, dims: [...dims], data };
}

/** For each flat index of `outDims`, the flat index into a tensor of `inDims` broadcast to it. */
function broadcastIndex(inDims: number[], outDims: number[]): Int32Array {
  const n = numel(outDims), idx = new Int32Array(n);
  const off = outDims.length - inDims.length, inStr = strides(inDims);
  const coord = new Array<number>(outDims.length).fill(0);
  for (let i = 0; i < n; i++) {
    let k = 0;
    for (let d = 0; d < inDims.length; d++) if (inDims[d] !== 1) k += coord[d + off] * inStr[d];
    idx[i] = k;
    for (let d = outDims.length - 1; d >= 0; d--) { if (++coord[d] < outDims[d]) break; coord[d] = 0; }
  }
  return idx;
}

const map1 = (f: (a: number) => number): EvalRule => (x) => [x[0]!.v.map(f)];

/** Elementwise n-ary op with broadcasting; `f` gets the values and whether the inputs are integers. */
const mapN = (f: (args: number[], int: boolean) => number): EvalRule => (x, c, outs) => {
  const present = x.filter((a): a is Arr => !!a);
  const idx = present.map((a) => broadcastIndex(a.dims, outs[0].dims));
  const int = isIntType(c.input(0).elemType);
  const n = numel(outs[0].dims), res = new Array<number>(n), args = new Array<number>(present.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < present.length; k++) args[k] = present[k].v[idx[k][i]];
    res[i] = f(args, int);
  }
  return [res];
};

const bin = (f: (a: number, b: number, int: boolean) => number) => mapN((a, int) => f(a[0], a[1], int));
const pass: EvalRule = (x) => [x[0]!.v.slice()];

/** Gathers values by a list of source indices computed from output coordinates. */
function gatherBy(src: number[], outDims: number[], srcIndex: (coord: number[]) => number): number[] {
  const n = numel(outDims), res = new Array<number>(n), coord = new Array<number>(outDims.length).fill(0);
  for (let i = 0; i < n; i++) {
    res[i] = src[srcIndex(coord)];
    for (let d = outDims.length - 1; d >= 0; d--) { if (++coord[d] < outDims[d]) break; coord[d] = 0; }
  }
  return res;
}

/** Reduction along axes with `init` and `step`; `fin` post-processes (e.g. mean). */
const reduce = (axesInputFrom: number, init: number, step: (acc: number, v: number) => number, fin = (acc: number, _n: number) => acc): EvalRule => (x, c, outs) => {
  const a = x[0]!, r = a.dims.length;
  let axes = c.opset >= axesInputFrom ? c.optInts(1, 'axes') : attrInts(c.node, 'axes');
  if (!axes || axes.length === 0) axes = attrInt(c.node, 'noop_with_empty_axes', 0) ? [] : a.dims.map((_, i) => i);
  const set = new Set(axes.map((ax) => normAxis(ax, r, c.node)));
  const keptDims = a.dims.map((d, i) => (set.has(i) ? 1 : d)), kStr = strides(keptDims), aStr = strides(a.dims);
  const acc = new Array<number>(numel(outs[0].dims)).fill(init), count = numel(a.dims) / Math.max(1, acc.length);
  for (let i = 0; i < a.v.length; i++) {
    let k = 0;
    for (let d = 0; d < r; d++) if (!set.has(d)) k += Math.floor(i / aStr[d]) % a.dims[d] * kStr[d];
    acc[k] = step(acc[k], a.v[i]);
  }
  return [acc.map((v) => fin(v, count))];
};

/** Evaluators for ops whose inputs are all known; ops missing here are never folded. */
export const EVAL_RULES: Record<string, EvalRule> = {
  Constant: (_x, c) => [arrOf(constantAttrTensor(c.node)).v],
  Identity: pass, Reshape: pass, Flatten: pass, Squeeze: pass, Unsqueeze: pass, Cast: pass, CastLike: pass,
  Neg: map1((a) => -a), Abs: map1(Math.abs), Sqrt: map1(Math.sqrt), Exp: map1(Math.exp), Log: map1(Math.log),
  Floor: map1(Math.floor), Ceil: map1(Math.ceil), Sign: map1(Math.sign), Reciprocal: map1((a) => 1 / a),
  Sin: map1(Math.sin), Cos: map1(Math.cos), Tanh: map1(Math.tanh), Relu: map1((a) => Math.max(a, 0)),
  Sigmoid: map1((a) => 1 / (1 + Math.exp(-a))), Not: map1((a) => (a ? 0 : 1)), IsNaN: map1((a) => (Number.isNaN(a) ? 1 : 0)),
  IsInf: map1((a) => (Number.isFinite(a) || Number.isNaN(a) ? 0 : 1)),
  // ONNX Round is round-half-to-even
  Round: map1((a) => { const r = Math.round(a); return Math.abs(a % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r; }),
  Add: bin((a, b) => a + b), Sub: bin((a, b) => a - b), Mul: bin((a, b) => a * b),
  Div: bin((a, b, int) => (int ? Math.trunc(a / b) : a / b)),
  Pow: bin((a, b) => a ** b),
  Mod: (x, c, o) => (attrInt(c.node, 'fmod', 0) ? bin((a, b) => a % b) : bin((a, b) => a - b * Math.floor(a / b)))(x, c, o),
  Equal: bin((a, b) => +(a === b)), Less: bin((a, b) => +(a < b)), Greater: bin((a, b) => +(a > b)),
  LessOrEqual: bin((a, b) => +(a <= b)), GreaterOrEqual: bin((a, b) => +(a >= b)),
  And: bin((a, b) => +(!!a && !!b)), Or: bin((a, b) => +(!!a || !!b)), Xor: bin((a, b) => +(!!a !== !!b)),
  Max: mapN((a) => Math.max(...a)), Min: mapN((a) => Math.min(...a)), Sum: mapN((a) => a.reduce((s, v) => s + v, 0)),
  Mean: mapN((a) => a.reduce((s, v) => s + v, 0) / a.length),
  Where: mapN((a) => (a[0] ? a[1] : a[2])),
  Expand: (x, _c, outs) => { const idx = broadcastIndex(x[0]!.dims, outs[0].dims); return [Array.from(idx, (i) => x[0]!.v[i])]; },
  Clip: (x, c) => {
    const lo = c.opset >= 11 ? x[1]?.v[0] ?? -Infinity : attrFloat(c.node, 'min', -Infinity);
    const hi = c.opset >= 11 ? x[2]?.v[0] ?? Infinity : attrFloat(c.node, 'max', Infinity);
    return [x[0]!.v.map((a) => Math.min(Math.max(a, lo), hi))];
  },
  Shape: (_x, c, outs) => { const n = outs[0].dims[0], d = c.input(0).dims, r = d.length; const s = attrInt(c.node, 'start', 0); const st = Math.min(Math.max(s < 0 ? s + r : s, 0), r); return [d.slice(st, st + n)]; },
  Size: (_x, c) => [[numel(c.input(0).dims)]],
  ConstantOfShape: (_x, c, outs) => {
    const v = c.node.attrs.value;
    const fill = v?.type === 'tensor' ? arrOf(v.value).v[0] ?? 0 : 0;
    return [new Array<number>(numel(outs[0].dims)).fill(fill)];
  },
  Range: (x, _c, outs) => { const [s, d] = [x[0]!.v[0], x[2]!.v[0]]; return [Array.from({ length: outs[0].dims[0] }, (_, i) => s + i * d)]; },
  Gather: (x, c, outs) => {
    const data = x[0]!, ind = x[1]!, axis = normAxis(attrInt(c.node, 'axis', 0), data.dims.length, c.node);
    const dStr = strides(data.dims), ir = ind.dims.length, iStr = strides(ind.dims);
    return [gatherBy(data.v, outs[0].dims, (co) => {
      let k = 0;
      for (let d = 0; d < ir; d++) k += co[axis + d] * iStr[d];
      let j = ind.v[k];
      if (j < 0) j += data.dims[axis];
      let s = j * dStr[axis];
      for (let d = 0; d < axis; d++) s += co[d] * dStr[d];
      for (let d = axis + 1; d < data.dims.length; d++) s += co[d + ir - 1] * dStr[d];
      return s;
    })];
  },
  Concat: (x, c, outs) => {
    const ins = x.filter((a): a is Arr => !!a), axis = normAxis(attrInt(c.node, 'axis', 0), outs[0].dims.length, c.node);
    const outer = numel(outs[0].dims.slice(0, axis)), res: number[] = [];
    for (let o = 0; o < outer; o++) for (const a of ins) {
      const inner = numel(a.dims.slice(axis));
      for (let i = 0; i < inner; i++) res.push(a.v[o * inner + i]);
    }
    return [res];
  },
  Slice: (x, c, outs) => {
    const p = sliceParams(c, x[0]!.dims), s = strides(x[0]!.dims);
    return [gatherBy(x[0]!.v, outs[0].dims, (co) => co.reduce((k, v, d) => k + (p[d].start + v * p[d].step) * s[d], 0))];
  },
  Transpose: (x, c, outs) => {
    const d = x[0]!.dims, perm = attrInts(c.node, 'perm') ?? d.map((_, i) => d.length - 1 - i), s = strides(d);
    return [gatherBy(x[0]!.v, outs[0].dims, (co) => co.reduce((k, v, i) => k + v * s[perm[i]], 0))];
  },
  Tile: (x, _c, outs) => {
    const d = x[0]!.dims, s = strides(d);
    return [gatherBy(x[0]!.v, outs[0].dims, (co) => co.reduce((k, v, i) => k + (v % d[i]) * s[i], 0))];
  },
  Split: (x, c, outs) => {
    const d = x[0]!.dims, axis = normAxis(attrInt(c.node, 'axis', 0), d.length, c.node), s = strides(d);
    let off = 0;
    return splitSizes(c, d[axis], outs.length).map((size, k) => {
      const start = off; off += size;
      return gatherBy(x[0]!.v, outs[k].dims, (co) => co.reduce((a, v, i) => a + (i === axis ? v + start : v) * s[i], 0));
    });
  },
  ReduceSum: reduce(13, 0, (a, v) => a + v),
  ReduceMean: reduce(18, 0, (a, v) => a + v, (a, n) => a / n),
  ReduceProd: reduce(18, 1, (a, v) => a * v),
  ReduceMax: reduce(18, -Infinity, Math.max),
  ReduceMin: reduce(18, Infinity, Math.min),
};
