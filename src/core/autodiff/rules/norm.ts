/** Gradient rules of Softmax/LogSoftmax and the normalizations, with statistics recomputed from the input. */
import { A } from '../../onnx/builder';
import { DataType, makeTensor } from '../../onnx/ir';
import type { GradCtx, GradRule } from '../context';

const mul = (c: GradCtx, a: string, b: string) => c.op('Mul', [a, b]);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Softmax axes: one axis (default -1) since opset 13, the flattened tail from `axis` (default 1) before. */
function softmaxAxes(c: GradCtx): number[] {
  const r = c.dims(c.in(0)).length;
  const raw = c.attrI('axis', c.opset >= 13 ? -1 : 1);
  const axis = raw < 0 ? raw + r : raw;
  return c.opset >= 13 ? [axis] : range(axis, r);
}

/**
 * xhat = (x - mean) / sqrt(var + eps) over trailing `axes` (keepdims), and 1/sqrt(var + eps). From opset 17 one
 * LayerNormalization with unit scale returns both (its InvStdDev output); before, seven elementwise/reduce nodes.
 */
function standardize(c: GradCtx, x: string, axes: number[], eps: number, dims = c.dims(x), dt = c.dtype(x)): { xhat: string; invstd: string } {
  if (c.opset >= 17 && (dt === DataType.FLOAT || dt === DataType.DOUBLE) && axes.every((a, i) => a === dims.length - axes.length + i)) {
    const [xhat, , invstd] = c.opN('LayerNormalization', [x, unitScale(c, dims.slice(axes[0]), dt)], { axis: A.i(axes[0]), epsilon: A.f(eps) }, 3);
    return { xhat, invstd };
  }
  const d = c.op('Sub', [x, c.reduceMean(x, axes, true)]);
  const variance = c.reduceMean(mul(c, d, d), axes, true);
  const invstd = c.op('Reciprocal', [c.op('Sqrt', [c.op('Add', [variance, c.scalar(eps, x)])])]);
  return { xhat: mul(c, d, invstd), invstd };
}

/** A tensor of ones of `dims`, one per shape and type in the graph. */
function unitScale(c: GradCtx, dims: number[], dt: DataType): string {
  const name = `grad/ones_${dt}_${dims.join('x')}`;
  if (!c.b.graph.initializers.has(name)) c.b.initializer(makeTensor(name, dt, dims, new Array<number>(dims.reduce((a, b) => a * b, 1)).fill(1)), true);
  return name;
}

/** True when `name` is an initializer holding only ones (the unit scale exporters give GroupNorm's InstanceNormalization). */
function allOnes(c: GradCtx, name: string): boolean {
  const t = c.b.graph.initializers.get(name);
  if (!t || (t.dataType !== DataType.FLOAT && t.dataType !== DataType.DOUBLE)) return false;
  for (let i = 0; i < t.data.length; i++) if (t.data[i] !== 1) return false;
  return true;
}

/** dx = invstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), the backward of standardize. */
function standardizeBackward(c: GradCtx, gxhat: string, xhat: string, invstd: string, axes: number[]): string {
  const m1 = c.reduceMean(gxhat, axes, true);
  const m2 = c.reduceMean(mul(c, gxhat, xhat), axes, true);
  return mul(c, invstd, c.op('Sub', [c.op('Sub', [gxhat, m1]), mul(c, xhat, m2)]));
}

/** Per-channel [C] vector reshaped to broadcast against [N, C, spatial...]. */
const channelVec = (c: GradCtx, v: string, rank: number) => c.reshape(v, [c.dims(v)[0], ...new Array<number>(rank - 2).fill(1)]);

export const NORM_RULES: Record<string, GradRule> = {
  // y = softmax(x): dx = y (dy - sum(dy y))
  Softmax: (c, [g]) => {
    const y = c.out();
    return [mul(c, y, c.op('Sub', [g!, c.reduceSum(mul(c, g!, y), softmaxAxes(c), true)]))];
  },
  // y = logsoftmax(x): dx = dy - exp(y) sum(dy)
  LogSoftmax: (c, [g]) => [c.op('Sub', [g!, mul(c, c.op('Exp', [c.out()]), c.reduceSum(g!, softmaxAxes(c), true))])],
  // y = xhat s + b per (n, c) over spatial axes
  InstanceNormalization: (c, [g]) => {
    const [x, s] = c.node.inputs;
    const r = c.dims(x).length;
    const spatial = range(2, r), notC = [0, ...spatial];
    const { xhat, invstd } = standardize(c, x, spatial, c.attrF('epsilon', 1e-5));
    return [
      c.grad(0, () => standardizeBackward(c, allOnes(c, s) ? g! : mul(c, g!, channelVec(c, s, r)), xhat, invstd, spatial)),
      c.grad(1, () => c.reduceSum(mul(c, g!, xhat), notC, false)),
      c.grad(2, () => c.reduceSum(g!, notC, false)),
    ];
  },
  // y = xhat s + b over axes [axis, rank)
  LayerNormalization: (c, gy) => {
    if (gy[1] || gy[2]) throw new Error(`${c.where()}: gradients through the Mean/InvStdDev outputs are not supported`);
    const g = gy[0]!;
    const [x, s, b] = c.node.inputs;
    const xd = c.dims(x);
    const a = c.attrI('axis', -1);
    const axes = range(a < 0 ? a + xd.length : a, xd.length);
    const { xhat, invstd } = standardize(c, x, axes, c.attrF('epsilon', 1e-5));
    return [
      c.grad(0, () => standardizeBackward(c, mul(c, g, s), xhat, invstd, axes)),
      c.grad(1, () => c.unbroadcast(mul(c, g, xhat), xd, c.dims(s))),
      b ? c.grad(2, () => c.unbroadcast(g, xd, c.dims(b))) : null,
    ];
  },
  // y = xhat s + b, statistics per (n, group); scale/bias per channel (opset 21) or per group (opset 18)
  GroupNormalization: (c, [g]) => {
    const [x, s] = c.node.inputs;
    const xd = c.dims(x);
    const groups = c.attrI('num_groups', 1);
    const grouped = [xd[0], groups, -1];
    const groupedDims = [xd[0], groups, xd.reduce((a, b) => a * b, 1) / (xd[0] * groups)];
    const { xhat, invstd } = standardize(c, c.reshape(x, grouped), [2], c.attrF('epsilon', 1e-5), groupedDims, c.dtype(x));
    let gxhat: string, gs: () => string, gb: () => string;
    if (c.dims(s)[0] === xd[1]) {
      const xhatFull = c.reshape(xhat, xd);
      const notC = [0, ...range(2, xd.length)];
      gxhat = c.reshape(mul(c, g!, channelVec(c, s, xd.length)), grouped);
      gs = () => c.reduceSum(mul(c, g!, xhatFull), notC, false);
      gb = () => c.reduceSum(g!, notC, false);
    } else {
      const gg = c.reshape(g!, grouped);
      gxhat = mul(c, gg, c.reshape(s, [groups, 1]));
      gs = () => c.reduceSum(mul(c, gg, xhat), [0, 2], false);
      gb = () => c.reduceSum(gg, [0, 2], false);
    }
    return [c.grad(0, () => c.reshape(standardizeBackward(c, gxhat, xhat, invstd, [2]), xd)), c.grad(1, gs), c.grad(2, gb)];
  },
};
