/** Gradient rules of Conv and ConvTranspose (any spatial rank, strides, pads, dilations, groups). */
import { A } from '../../onnx/builder';
import type { GradCtx, GradRule } from '../context';

interface Geometry { strides: number[]; dilations: number[]; begin: number[]; end: number[]; group: number }

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const swap01 = (r: number) => [1, 0, ...range(2, r)];

/** Conv geometry with auto_pad resolved to explicit pads from the static input/output sizes. */
function convGeometry(c: GradCtx, inSp: number[], outSp: number[], kSp: number[]): Geometry {
  const n = kSp.length;
  const strides = c.attrInts('strides') ?? new Array<number>(n).fill(1);
  const dilations = c.attrInts('dilations') ?? new Array<number>(n).fill(1);
  const pads = c.attrInts('pads') ?? new Array<number>(2 * n).fill(0);
  const auto = c.attrS('auto_pad', 'NOTSET');
  let begin = pads.slice(0, n), end = pads.slice(n);
  if (auto === 'VALID') begin = end = new Array<number>(n).fill(0);
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
    const total = kSp.map((k, i) => Math.max(0, (outSp[i] - 1) * strides[i] + (k - 1) * dilations[i] + 1 - inSp[i]));
    const small = total.map((t) => Math.floor(t / 2));
    begin = auto === 'SAME_UPPER' ? small : total.map((t, i) => t - small[i]);
    end = total.map((t, i) => t - begin[i]);
  }
  return { strides, dilations, begin, end, group: c.attrI('group', 1) };
}

/** [N, C, ...S] -> [C/G, G*N, ...S]: channels become the batch so a grouped Conv correlates over N and S. */
function channelsToBatch(c: GradCtx, x: string, d: number[], G: number): string {
  if (G === 1) return c.transpose(x, swap01(d.length));
  const [N, C, ...S] = d;
  const t = c.transpose(c.reshape(x, [N, G, C / G, ...S]), [2, 1, 0, ...range(3, d.length + 1)]);
  return c.reshape(t, [C / G, G * N, ...S]);
}

/** Correlates `input` with `weight` (both already arranged) and returns [A, B, ...k] sliced to the kernel size. */
function kernelGrad(c: GradCtx, input: string, inSp: number[], weight: string, wSp: number[], geo: Geometry, kSp: number[]): string {
  const r = kSp.length + 2;
  const conv = c.op('Conv', [input, weight], {
    strides: A.ints(geo.dilations), dilations: A.ints(geo.strides), pads: A.ints([...geo.begin, ...geo.end]), group: A.i(geo.group),
  });
  const t = c.transpose(conv, swap01(r));
  const got = inSp.map((s, i) => Math.floor((s + geo.begin[i] + geo.end[i] - ((wSp[i] - 1) * geo.strides[i] + 1)) / geo.dilations[i]) + 1);
  return got.some((g, i) => g !== kSp[i]) ? c.slice(t, kSp.map(() => 0), kSp, range(2, r)) : t;
}

// Y = conv(X, W) + B. dX = conv_transpose(dY, W) with output_padding restoring X's size;
// dW[m, c, k] = sum_{n, o} dY[n, m, o] X[n, c, o*s + k*d - pad]: a Conv over channel-major X and dY
// (strides and dilations swap roles); dB = sum of dY over N and spatial axes.
const conv: GradRule = (c, [g]) => {
  const [x, w, b] = c.node.inputs;
  const xd = c.dims(x), wd = c.dims(w), yd = c.dims(c.out());
  const inSp = xd.slice(2), outSp = yd.slice(2), kSp = wd.slice(2);
  const geo = convGeometry(c, inSp, outSp, kSp);
  const outputPadding = inSp.map((s, i) => s + geo.begin[i] + geo.end[i] - ((outSp[i] - 1) * geo.strides[i] + (kSp[i] - 1) * geo.dilations[i] + 1));
  return [
    c.grad(0, () => c.op('ConvTranspose', [g!, w], {
      strides: A.ints(geo.strides), dilations: A.ints(geo.dilations), pads: A.ints([...geo.begin, ...geo.end]),
      group: A.i(geo.group), output_padding: A.ints(outputPadding),
    })),
    c.grad(1, () => kernelGrad(c, channelsToBatch(c, x, xd, geo.group), inSp, c.transpose(g!, swap01(yd.length)), outSp, geo, kSp)),
    b ? c.grad(2, () => c.reduceSum(g!, [0, ...range(2, yd.length)], false)) : null,
  ];
};

// Y = conv_transpose(X, W) + B is the adjoint of a Conv, so dX = conv(dY, W) with the same geometry;
// dW[ci, co, k] = sum_{n, h} X[n, ci, h] dYpad[n, co, h*s + k*d]: a Conv over channel-major dY and X.
const convTranspose: GradRule = (c, [g]) => {
  const [x, w, b] = c.node.inputs;
  const xd = c.dims(x), wd = c.dims(w), yd = c.dims(c.out());
  const inSp = xd.slice(2), outSp = yd.slice(2), kSp = wd.slice(2);
  if (!c.attrInts('pads') && (c.attrS('auto_pad', 'NOTSET') !== 'NOTSET' || c.attrInts('output_shape'))) {
    throw new Error(`${c.where()}: gradient needs explicit pads (auto_pad/output_shape are not supported); re-export with padding`);
  }
  const geo = convGeometry(c, inSp, outSp, kSp);
  const r = xd.length;
  return [
    c.grad(0, () => {
      const dx = c.op('Conv', [g!, w], {
        strides: A.ints(geo.strides), dilations: A.ints(geo.dilations), pads: A.ints([...geo.begin, ...geo.end]), group: A.i(geo.group),
      });
      const got = outSp.map((o, i) => Math.floor((o + geo.begin[i] + geo.end[i] - (kSp[i] - 1) * geo.dilations[i] - 1) / geo.strides[i]) + 1);
      return got.some((v, i) => v !== inSp[i]) ? c.slice(dx, inSp.map(() => 0), inSp, range(2, r)) : dx;
    }),
    c.grad(1, () => kernelGrad(c, channelsToBatch(c, g!, yd, geo.group), outSp, c.transpose(x, swap01(r)), inSp, geo, kSp)),
    b ? c.grad(2, () => c.reduceSum(g!, [0, ...range(2, r)], false)) : null,
  ];
};

export const CONV_RULES: Record<string, GradRule> = { Conv: conv, ConvTranspose: convTranspose };
