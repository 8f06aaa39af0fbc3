/** Gradient rules of ops that pick elements: Slice, Pad, Gather, GatherElements, GatherND, Resize (nearest). */
import { A } from '../../onnx/builder';
import { DataType } from '../../onnx/ir';
import type { GradCtx, GradRule } from '../context';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Integer values of input i (or attribute `attr` before `since`), failing clearly when not constant. */
function constInput(c: GradCtx, i: number, attr: string, since: number): number[] | undefined {
  if (c.opset < since) return c.attrInts(attr);
  if (!c.in(i)) return undefined;
  const v = c.ints(c.in(i));
  if (!v) throw new Error(`${c.where()}: input ${i} ("${c.in(i)}") is not a constant; run specialize() before building the gradient`);
  return v;
}

/** Zero-pads `g` by begin/end per axis (Pad's pads are an input since opset 11). */
function pad(c: GradCtx, g: string, begin: number[], end: number[]): string {
  if (begin.every((v) => v === 0) && end.every((v) => v === 0)) return g;
  const pads = [...begin, ...end];
  return c.opset >= 11 ? c.op('Pad', [g, c.i64(pads)]) : c.op('Pad', [g], { pads: A.ints(pads) });
}

/** Where on x's axis the slice's first element (in increasing order) sits, and its element count. */
function sliceAxis(dim: number, start: number, end: number, step: number): { first: number; count: number } {
  const norm = (v: number) => (v < 0 ? v + dim : v);
  let s = norm(start), e = norm(end);
  if (step > 0) { s = Math.min(Math.max(s, 0), dim); e = Math.min(Math.max(e, 0), dim); }
  else { s = Math.min(Math.max(s, 0), dim - 1); e = Math.min(Math.max(e, -1), dim - 1); }
  const count = Math.max(0, Math.ceil((e - s) / step));
  return { first: step > 0 ? s : s + (count - 1) * step, count };
}

// y = x[start:end:step] per axis: dx is dy placed back at the picked positions, zeros elsewhere.
// Steps != 1: reverse (negative step), interleave |step|-1 zeros after each element, then pad.
const slice: GradRule = (c, [g]) => {
  const xd = c.dims(c.in(0)), r = xd.length;
  const starts = constInput(c, 1, 'starts', 10)!, ends = constInput(c, 2, 'ends', 10)!;
  const axes = (constInput(c, 3, 'axes', 10) ?? range(0, starts.length)).map((a) => (a < 0 ? a + r : a));
  const steps = (c.opset >= 10 ? constInput(c, 4, '', 10) : undefined) ?? starts.map(() => 1);
  const begin = new Array<number>(r).fill(0), end = new Array<number>(r).fill(0);
  let cur = g!;
  const cd = [...c.dims(c.out())];
  for (let k = 0; k < axes.length; k++) {
    const a = axes[k], { first, count } = sliceAxis(xd[a], starts[k], ends[k], steps[k]);
    if (count === 0) return [c.zeros(xd, c.dtype(c.in(0)))];
    const st = Math.abs(steps[k]);
    if (steps[k] < 0) cur = c.op('Slice', [cur, c.i64([-1]), c.i64([-(2 ** 62)]), c.i64([a]), c.i64([-1])]);
    if (st !== 1) {
      const up = [...cd.slice(0, a + 1), 1, ...cd.slice(a + 1)];
      const padEnd = new Array<number>(r + 1).fill(0);
      padEnd[a + 1] = st - 1;
      cur = pad(c, c.reshape(cur, up), new Array<number>(r + 1).fill(0), padEnd);
      cd[a] = count * st;
      cur = c.slice(c.reshape(cur, cd), [0], [(count - 1) * st + 1], [a]);
      cd[a] = (count - 1) * st + 1;
    }
    begin[a] = first;
    end[a] = xd[a] - first - cd[a];
  }
  return [pad(c, cur, begin, end)];
};

// y = pad(x, pads) (constant mode): dx = the slice of dy that x occupies
const padGrad: GradRule = (c, [g]) => {
  if (c.attrS('mode', 'constant') !== 'constant') throw new Error(`${c.where()}: only constant-mode Pad has a gradient rule`);
  const xd = c.dims(c.in(0)), r = xd.length;
  const pads = constInput(c, 1, 'pads', 11)!;
  const axes = (c.opset >= 18 ? constInput(c, 3, '', 18) : undefined)?.map((a) => (a < 0 ? a + r : a)) ?? range(0, r);
  const n = axes.length;
  if (pads.some((p) => p < 0)) throw new Error(`${c.where()}: negative pads (cropping) have no gradient rule`);
  return [c.slice(g!, pads.slice(0, n), axes.map((a, k) => pads[k] + xd[a]), axes)];
};

// y = take(x, idx, axis): dx = scatter-add of dy into zeros at idx (ScatterND with the axis moved first)
const gather: GradRule = (c, [g]) => {
  if (c.opset < 16) throw new Error(`${c.where()}: the Gather gradient needs ScatterND reduction='add' (opset >= 16); this model is opset ${c.opset}`);
  const [x, idx] = c.node.inputs;
  const xd = c.dims(x), id = c.dims(idx), r = xd.length, q = id.length;
  const a = c.attrI('axis', 0) < 0 ? c.attrI('axis', 0) + r : c.attrI('axis', 0);
  const rest = [...xd.slice(0, a), ...xd.slice(a + 1)];
  const upd = a === 0 || q === 0 ? g! : c.transpose(g!, [...range(a, a + q), ...range(0, a), ...range(a + q, r + q - 1)]);
  const at = c.reshape(nonNegative(c, idx, xd[a]), [...id, 1]);
  const s = c.op('ScatterND', [c.zeros([xd[a], ...rest], c.dtype(x)), at, upd], { reduction: A.s('add') });
  return [a === 0 ? s : c.transpose(s, [...range(1, a + 1), 0, ...range(a + 1, r)])];
};

/** Indices as int64 with negatives wrapped (the scatter ops want int64). */
function nonNegative(c: GradCtx, idx: string, dim: number): string {
  const known = c.ints(idx);
  const i64 = c.dtype(idx) === DataType.INT64 ? idx : c.op('Cast', [idx], { to: A.i(DataType.INT64) });
  if (known && known.every((v) => v >= 0)) return i64;
  return c.op('Where', [c.op('Less', [i64, c.b.scalar(0, DataType.INT64)]), c.op('Add', [i64, c.b.scalar(dim, DataType.INT64)]), i64]);
}

// y[i][j] = x[idx[i][j]][j] (axis 0): dx = scatter-add of dy at idx
const gatherElements: GradRule = (c, [g]) => {
  const [x, idx] = c.node.inputs;
  const r = c.dims(x).length, a = c.attrI('axis', 0) < 0 ? c.attrI('axis', 0) + r : c.attrI('axis', 0);
  const at = nonNegative(c, idx, c.dims(x)[a]);
  return [c.op('ScatterElements', [c.zeros(c.dims(x), c.dtype(x)), at, g!], { axis: A.i(a), reduction: A.s('add') })];
};

// y[b..., i...] = x[b..., idx[b..., i..., :]] (the first batch_dims axes shared): dx = scatter-add of dy at the
// full coordinates, the batch coordinates put in front of idx's (ScatterND has no batch_dims)
const gatherND: GradRule = (c, [g]) => {
  const [x, idx] = c.node.inputs;
  const xd = c.dims(x), id = c.dims(idx), nb = c.attrI('batch_dims', 0), k = id[id.length - 1];
  const i64 = c.dtype(idx) === DataType.INT64 ? idx : c.op('Cast', [idx], { to: A.i(DataType.INT64) });
  const known = c.ints(idx);
  const wrapped = known && known.every((v) => v >= 0) ? i64
    : c.op('Where', [c.op('Less', [i64, c.b.scalar(0, DataType.INT64)]), c.op('Add', [i64, c.i64(xd.slice(nb, nb + k))]), i64]);
  const lead = id.slice(0, -1);
  const at = nb === 0 ? wrapped : c.op('Concat', [c.b.constI64(batchCoordinates(lead, nb), [...lead, nb]), wrapped], { axis: A.i(-1) });
  return [c.op('ScatterND', [c.zeros(xd, c.dtype(x)), at, g!], { reduction: A.s('add') })];
};

/** For every cell of an index grid of shape `lead`, its coordinates along the first `nb` axes (row-major). */
function batchCoordinates(lead: number[], nb: number): number[] {
  const out: number[] = [];
  const cells = lead.reduce((a, d) => a * d, 1);
  for (let cell = 0; cell < cells; cell++) {
    const coord: number[] = [];
    let rest = cell;
    for (let a = lead.length - 1; a >= 0; a--) { coord.unshift(rest % lead[a]); rest = Math.floor(rest / lead[a]); }
    out.push(...coord.slice(0, nb));
  }
  return out;
}

const NEAREST_FLOOR = new Set(['half_pixel:round_prefer_floor', 'half_pixel:round_prefer_ceil', 'pytorch_half_pixel:round_prefer_floor',
  'pytorch_half_pixel:round_prefer_ceil', 'asymmetric:floor']);

// nearest upsampling by integer factors s: y[h] = x[floor(h/s)], so dx[h] = sum_{j<s} dy[h*s + j]:
// split each scaled axis into (size, s) and sum the factor axes.
const resize: GradRule = (c, [g]) => {
  const xd = c.dims(c.in(0)), yd = c.dims(c.out());
  const mode = c.attrS('mode', 'nearest');
  const coord = c.opset >= 11 ? c.attrS('coordinate_transformation_mode', 'half_pixel') : 'asymmetric';
  const nearest = c.opset >= 11 ? c.attrS('nearest_mode', 'round_prefer_floor') : 'floor';
  const scales = yd.map((d, i) => d / xd[i]);
  if (mode !== 'nearest' || scales.some((s) => !Number.isInteger(s) || s < 1) || !NEAREST_FLOOR.has(`${coord}:${nearest}`)) {
    throw new Error(`${c.where()}: only nearest upsampling by integer factors has a gradient rule (got mode ${mode}, scales ${scales.join('x')}, ${coord}/${nearest})`);
  }
  if (scales.every((s) => s === 1)) return [g];
  const split: number[] = [], axes: number[] = [];
  xd.forEach((d, i) => { split.push(d); if (scales[i] > 1) { axes.push(split.length); split.push(scales[i]); } });
  return [c.reduceSum(c.reshape(g!, split), axes, false)];
};

export const SELECT_RULES: Record<string, GradRule> = {
  Slice: slice, Pad: padGrad, Gather: gather, GatherElements: gatherElements, GatherND: gatherND, Resize: resize, Upsample: resize,
};
