/** Gradient rules of layout ops: reshapes, transposes, concatenation, expansion and reductions. */
import { A } from '../../onnx/builder';
import type { GradCtx, GradRule } from '../context';

/** Any op that only reinterprets the input's elements in order: dx = reshape(dy, shape(x)). */
const asInputShape: GradRule = (c, [g]) => [c.reshape(g!, c.dims(c.in(0)))];

const normAxis = (a: number, r: number) => (a < 0 ? a + r : a);

/** Reduced axes of ReduceSum/ReduceMean/ReduceSumSquare (input since opset 13, or 18 for the others), or null for a no-op. */
function reduceAxes(c: GradCtx, axesAsInputSince: number): number[] | null {
  const r = c.dims(c.in(0)).length;
  let axes: number[] | undefined;
  if (c.opset >= axesAsInputSince && c.in(1)) {
    axes = c.ints(c.in(1));
    if (!axes) throw new Error(`${c.where()}: axes are not a constant; run specialize() before building the gradient`);
  } else if (c.opset < axesAsInputSince) axes = c.attrInts('axes');
  if (!axes || !axes.length) return c.attrI('noop_with_empty_axes', 0) && c.opset >= axesAsInputSince ? null : Array.from({ length: r }, (_, i) => i);
  return axes.map((a) => normAxis(a, r));
}

/** Broadcasts the reduced gradient back over the reduced axes, times `scale` (1/count for means). */
function reduceBackward(c: GradCtx, g: string, axes: number[] | null, scale: (count: number) => number): string {
  const xd = c.dims(c.in(0));
  if (!axes) return g;
  const kept = xd.map((d, i) => (axes.includes(i) ? 1 : d));
  const count = axes.reduce((n, a) => n * xd[a], 1);
  const s = scale(count);
  const e = c.op('Expand', [c.reshape(g, kept), c.i64(xd)]);
  return s === 1 ? e : c.op('Mul', [e, c.scalar(s, c.in(0))]);
}

export const SHAPE_RULES: Record<string, GradRule> = {
  Reshape: asInputShape,
  Flatten: asInputShape,
  Squeeze: asInputShape,
  Unsqueeze: asInputShape,
  // identity: dx = dy
  Identity: (_c, [g]) => [g],
  // y = x * mask / (1 - ratio) when training, else y = x
  Dropout: (c, [g]) => {
    const training = c.in(2) ? c.ints(c.in(2)) : [0];
    if (training && training[0] === 0) return [g];
    if (!c.out(1)) throw new Error(`${c.where()}: a training-mode Dropout needs its mask output for the gradient`);
    const ratio = c.in(1) ? c.ints(c.in(1)) : [0.5];
    if (!ratio) throw new Error(`${c.where()}: the dropout ratio must be a constant`);
    const keep = c.op('Cast', [c.out(1)], { to: A.i(c.dtype(c.out())) });
    return [c.op('Mul', [c.op('Mul', [g!, keep]), c.scalar(1 / (1 - ratio[0]), c.out())])];
  },
  // y = tile(x, repeats): y[k*d + j] = x[j], so dx sums dy over the k of each axis
  Tile: (c, [g]) => {
    const xd = c.dims(c.in(0));
    const reps = c.ints(c.in(1));
    if (!reps) throw new Error(`${c.where()}: repeats are not a constant; run specialize() before building the gradient`);
    const split = xd.flatMap((d, i) => [reps[i], d]);
    return [c.reshape(c.reduceSum(c.reshape(g!, split), xd.map((_, i) => 2 * i), false), xd)];
  },
  // dx = cast(dy) back to x's float type
  Cast: (c, [g]) => [c.op('Cast', [g!], { to: A.i(c.dtype(c.in(0))) })],
  // y = transpose(x, p): dx = transpose(dy, p^-1)
  Transpose: (c, [g]) => {
    const r = c.dims(c.in(0)).length;
    const perm = c.attrInts('perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
    const inv = new Array<number>(r);
    perm.forEach((p, i) => { inv[p] = i; });
    return [c.transpose(g!, inv)];
  },
  // y = concat(x_i): dx_i = the slice of dy that x_i filled
  Concat: (c, [g]) => {
    const r = c.dims(c.out()).length;
    const axis = normAxis(c.attrI('axis', 0), r);
    let off = 0;
    return c.node.inputs.map((x, i) => {
      const len = c.dims(x)[axis], start = off;
      off += len;
      return c.grad(i, () => c.slice(g!, [start], [start + len], [axis]));
    });
  },
  // y_i = split(x): dx = concat(dy_i), zeros for unused pieces
  Split: (c, gy) => {
    const r = c.dims(c.in(0)).length;
    const axis = normAxis(c.attrI('axis', 0), r);
    const parts = c.node.outputs.map((o, i) => gy[i] ?? c.zeros(c.dims(o), c.dtype(c.in(0))));
    return [c.op('Concat', parts, { axis: A.i(axis) })];
  },
  // y = expand(x): dx = sum of dy over the expanded axes
  Expand: (c, [g]) => [c.bgrad(0, () => g!)],
  // y = sum(x, axes): dx = expand(dy)
  ReduceSum: (c, [g]) => [reduceBackward(c, g!, reduceAxes(c, 13), () => 1)],
  // y = mean(x, axes): dx = expand(dy) / count
  ReduceMean: (c, [g]) => [reduceBackward(c, g!, reduceAxes(c, 18), (n) => 1 / n)],
  // y = sum(x^2, axes): dx = 2 x expand(dy)
  ReduceSumSquare: (c, [g]) => [c.op('Mul', [reduceBackward(c, g!, reduceAxes(c, 18), () => 2), c.in(0)])],
};
