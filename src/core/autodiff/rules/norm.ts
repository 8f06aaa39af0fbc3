/** Gradient rules of Softmax/LogSoftmax and the normalizations, with statistics recomputed from the input. */
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

/** xhat = (x - mean) / sqrt(var + eps) over `axes` (keepdims), and 1/sqrt(var + eps). */
function standardize(c: GradCtx, x: string, axes: number[], eps: number): { xhat: string; invstd: string } {
  const d = c.op('Sub', [x, c.reduceMean(x, axes, true)]);
  const variance = c.reduceMean(mul(c, d, d), axes, true);
  const invstd = c.op('Reciprocal', [c.op('Sqrt', [c.op('Add', [variance, c.scalar(eps, x)])])]);
  return { xhat: mul(c, d, invstd), invstd };
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
      c.grad(0, () => standardizeBackward(c, mul(c, g!, channelVec(c, s, r)), xhat, invstd, spatial)),
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
    const { xhat, invstd } = standardize(c, c.reshape(x, grouped), [2], c.attrF('epsilon', 1e-5));
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
