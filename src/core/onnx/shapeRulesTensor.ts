/** Static shape rules for tensor-manipulation ops, several of which need the values of small integer inputs. */
import { DataType, numel } from './ir';
import { ShapeCtx, ShapeRule } from './shapeRules';
import { attrInt, attrInts, attrString, broadcastShapes, constantAttrTensor, normAxis, sliceAxis, where } from './shapeUtil';

const out = (elemType: DataType, dims: number[]) => [{ elemType, dims }];

/** Reshape target dims: 0 copies the input dim (unless allowzero), -1 takes what is left. */
export function reshapeDims(inDims: number[], shape: number[], allowZero: boolean, what: string): number[] {
  const dims = shape.map((d, i) => (d === 0 && !allowZero ? inDims[i] : d));
  const total = numel(inDims);
  const minus = dims.indexOf(-1);
  if (minus >= 0) {
    const rest = numel(dims.filter((_, i) => i !== minus));
    if (rest === 0 || total % rest !== 0) throw new Error(`${what}: cannot reshape [${inDims}] to [${shape}]`);
    dims[minus] = total / rest;
  }
  if (numel(dims) !== total) throw new Error(`${what}: cannot reshape [${inDims}] (${total} elements) to [${shape}]`);
  return dims;
}

/** Axes for Squeeze/Unsqueeze: an attribute before opset 13, an input from 13. */
function axesOf(c: ShapeCtx): number[] | undefined {
  return c.opset >= 13 ? c.optInts(1, 'axes') : attrInts(c.node, 'axes');
}

/** Output dims of Unsqueeze (axes refer to the output rank). */
export function unsqueezeDims(dims: number[], axes: number[], node: ShapeCtx['node']): number[] {
  const rank = dims.length + axes.length;
  const set = new Set(axes.map((a) => normAxis(a, rank, node)));
  const res: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) res.push(set.has(i) ? 1 : dims[k++]);
  return res;
}

/** Output dims of Squeeze (no axes: drop every 1). */
export function squeezeDims(dims: number[], axes: number[] | undefined, node: ShapeCtx['node']): number[] {
  if (!axes || axes.length === 0) return dims.filter((d) => d !== 1);
  const set = new Set(axes.map((a) => normAxis(a, dims.length, node)));
  for (const a of set) if (dims[a] !== 1) throw new Error(`${where(node)}: cannot squeeze axis ${a} of size ${dims[a]}`);
  return dims.filter((_, i) => !set.has(i));
}

/** Per-axis (start, count, step) of a Slice, from attributes (opset < 10) or inputs. */
export function sliceParams(c: ShapeCtx, dims: number[]): Array<{ start: number; count: number; step: number }> {
  let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
  if (c.opset < 10) {
    starts = attrInts(c.node, 'starts') ?? []; ends = attrInts(c.node, 'ends') ?? []; axes = attrInts(c.node, 'axes');
  } else {
    starts = c.ints(1, 'starts'); ends = c.ints(2, 'ends'); axes = c.optInts(3, 'axes'); steps = c.optInts(4, 'steps');
  }
  const res = dims.map((d) => ({ start: 0, count: d, step: 1 }));
  starts.forEach((s, i) => {
    const ax = normAxis(axes ? axes[i] : i, dims.length, c.node);
    const step = steps ? steps[i] : 1;
    res[ax] = { ...sliceAxis(dims[ax], s, ends[i], step), step };
  });
  return res;
}

/** Sizes of each Split output (opset variants: attribute < 13, input from 13, num_outputs from 18). */
export function splitSizes(c: ShapeCtx, dim: number, nOut: number): number[] {
  const given = c.opset >= 13 ? c.optInts(1, 'split') : attrInts(c.node, 'split');
  if (given && given.length) {
    if (given.reduce((a, b) => a + b, 0) !== dim) throw new Error(`${where(c.node)}: split sizes [${given}] do not add up to ${dim}`);
    return given;
  }
  const n = c.opset >= 18 ? attrInt(c.node, 'num_outputs', nOut) : nOut;
  const chunk = Math.ceil(dim / n);
  if (c.opset < 18 && dim % n !== 0) throw new Error(`${where(c.node)}: axis of size ${dim} does not split evenly into ${n}`);
  return Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
}

/** Resize output dims from `sizes` or `scales` (opset 10: scales is input 1; 11+: roi, scales, sizes; 18+: axes). */
function resizeDims(c: ShapeCtx): number[] {
  const x = c.input(0).dims;
  const axesAttr = c.opset >= 18 ? attrInts(c.node, 'axes') : undefined;
  const axes = (axesAttr ?? x.map((_, i) => i)).map((a) => normAxis(a, x.length, c.node));
  const sizes = c.opset >= 11 ? c.optInts(3, 'sizes') : undefined;
  const res = [...x];
  if (sizes && sizes.length) {
    const policy = attrString(c.node, 'keep_aspect_ratio_policy', 'stretch');
    if (policy === 'stretch') { axes.forEach((a, i) => (res[a] = sizes[i])); return res; }
    const ratios = axes.map((a, i) => sizes[i] / x[a]);
    const s = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
    axes.forEach((a) => (res[a] = Math.round(s * x[a])));
    return res;
  }
  const scales = c.optFloats(c.opset >= 11 ? 2 : 1, 'scales');
  if (!scales) throw new Error(`${where(c.node)}: needs constant scales or sizes once the input shapes are fixed`);
  axes.forEach((a, i) => (res[a] = Math.floor(x[a] * scales[i])));
  return res;
}

/** Shape rules for tensor-manipulation ops. */
export const TENSOR_RULES: Record<string, ShapeRule> = {
  Constant: (c) => { const t = constantAttrTensor(c.node); return out(t.dataType, [...t.dims]); },
  Cast: (c) => out(attrInt(c.node, 'to', 0), [...c.input(0).dims]),
  CastLike: (c) => out(c.input(1).elemType, [...c.input(0).dims]),
  Shape: (c) => {
    const r = c.input(0).dims.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    const start = clamp(attrInt(c.node, 'start', 0)), end = clamp(attrInt(c.node, 'end', r));
    return out(DataType.INT64, [Math.max(0, end - start)]);
  },
  Size: () => out(DataType.INT64, []),
  Reshape: (c) => {
    const allowZero = c.opset >= 14 && attrInt(c.node, 'allowzero', 0) === 1;
    return out(c.input(0).elemType, reshapeDims(c.input(0).dims, c.ints(1, 'shape'), allowZero, where(c.node)));
  },
  Flatten: (c) => {
    const d = c.input(0).dims, axis = attrInt(c.node, 'axis', 1);
    const a = axis < 0 ? axis + d.length : axis;
    return out(c.input(0).elemType, [numel(d.slice(0, a)), numel(d.slice(a))]);
  },
  Transpose: (c) => {
    const d = c.input(0).dims;
    const perm = attrInts(c.node, 'perm') ?? d.map((_, i) => d.length - 1 - i);
    if (perm.length !== d.length) throw new Error(`${where(c.node)}: perm [${perm}] does not match rank ${d.length}`);
    return out(c.input(0).elemType, perm.map((p) => d[p]));
  },
  Concat: (c) => {
    const ins = c.inputs.filter((x) => !!x) as Array<{ dims: number[]; elemType: DataType }>;
    const rank = ins[0].dims.length, axis = normAxis(attrInt(c.node, 'axis', 0), rank, c.node);
    const dims = [...ins[0].dims];
    dims[axis] = 0;
    for (const x of ins) {
      if (x.dims.length !== rank || x.dims.some((d, i) => i !== axis && d !== dims[i])) {
        throw new Error(`${where(c.node)}: inputs [${ins.map((y) => `[${y.dims}]`).join(', ')}] differ off axis ${axis}`);
      }
      dims[axis] += x.dims[axis];
    }
    return out(ins[0].elemType, dims);
  },
  Split: (c) => {
    const x = c.input(0), axis = normAxis(attrInt(c.node, 'axis', 0), x.dims.length, c.node);
    return splitSizes(c, x.dims[axis], c.node.outputs.length).map((s) => ({ elemType: x.elemType, dims: x.dims.map((d, i) => (i === axis ? s : d)) }));
  },
  Slice: (c) => out(c.input(0).elemType, sliceParams(c, c.input(0).dims).map((p) => p.count)),
  Gather: (c) => {
    const d = c.input(0).dims, axis = normAxis(attrInt(c.node, 'axis', 0), d.length, c.node);
    return out(c.input(0).elemType, [...d.slice(0, axis), ...c.input(1).dims, ...d.slice(axis + 1)]);
  },
  GatherElements: (c) => out(c.input(0).elemType, [...c.input(1).dims]),
  GatherND: (c) => {
    const d = c.input(0).dims, ind = c.input(1).dims, b = attrInt(c.node, 'batch_dims', 0);
    return out(c.input(0).elemType, [...ind.slice(0, -1), ...d.slice(b + ind[ind.length - 1])]);
  },
  ScatterND: (c) => out(c.input(0).elemType, [...c.input(0).dims]),
  ScatterElements: (c) => out(c.input(0).elemType, [...c.input(0).dims]),
  Unsqueeze: (c) => out(c.input(0).elemType, unsqueezeDims(c.input(0).dims, axesOf(c) ?? [], c.node)),
  Squeeze: (c) => out(c.input(0).elemType, squeezeDims(c.input(0).dims, axesOf(c), c.node)),
  Expand: (c) => out(c.input(0).elemType, broadcastShapes([c.input(0).dims, c.ints(1, 'shape')], c.node)),
  Tile: (c) => {
    const reps = c.ints(1, 'repeats');
    return out(c.input(0).elemType, c.input(0).dims.map((d, i) => d * reps[i]));
  },
  Pad: (c) => {
    const d = c.input(0).dims;
    const pads = c.opset >= 11 ? c.ints(1, 'pads') : attrInts(c.node, 'pads') ?? [];
    const axes = (c.opset >= 18 ? c.optInts(3, 'axes') : undefined) ?? d.map((_, i) => i);
    const res = [...d];
    axes.forEach((a, i) => { const ax = normAxis(a, d.length, c.node); res[ax] += pads[i] + pads[i + axes.length]; });
    return out(c.input(0).elemType, res);
  },
  Resize: (c) => out(c.input(0).elemType, resizeDims(c)),
  Upsample: (c) => {
    const x = c.input(0).dims;
    const scales = c.opset >= 9 ? c.optFloats(1, 'scales') : (c.node.attrs.scales?.value as number[] | undefined);
    if (!scales) throw new Error(`${where(c.node)}: needs constant scales`);
    return out(c.input(0).elemType, x.map((d, i) => Math.floor(d * scales[i])));
  },
  ConstantOfShape: (c) => {
    const v = c.node.attrs.value;
    return out(v?.type === 'tensor' ? v.value.dataType : DataType.FLOAT, c.ints(0, 'shape'));
  },
  Range: (c) => {
    const [start] = c.optFloats(0, 'start') ?? [], [limit] = c.optFloats(1, 'limit') ?? [], [delta] = c.optFloats(2, 'delta') ?? [];
    if (start === undefined || limit === undefined || delta === undefined) throw new Error(`${where(c.node)}: start, limit and delta must be constants once the input shapes are fixed`);
    return out(c.input(0).elemType, [Math.max(Math.ceil((limit - start) / delta), 0)]);
  },
  TopK: (c) => {
    const d = c.input(0).dims, axis = normAxis(attrInt(c.node, 'axis', -1), d.length, c.node);
    const k = c.opset >= 10 ? c.ints(1, 'K')[0] : attrInt(c.node, 'k', 0);
    const dims = d.map((x, i) => (i === axis ? k : x));
    return [{ elemType: c.input(0).elemType, dims }, { elemType: DataType.INT64, dims }];
  },
  DepthToSpace: (c) => {
    const [n, ch, h, w] = c.input(0).dims, b = attrInt(c.node, 'blocksize', 1);
    return out(c.input(0).elemType, [n, ch / (b * b), h * b, w * b]);
  },
  SpaceToDepth: (c) => {
    const [n, ch, h, w] = c.input(0).dims, b = attrInt(c.node, 'blocksize', 1);
    return out(c.input(0).elemType, [n, ch * b * b, h / b, w / b]);
  },
};
