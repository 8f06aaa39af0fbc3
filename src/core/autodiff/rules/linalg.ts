/** Gradient rules of MatMul (numpy batching, 1-D operands) and Gemm. */
import { A } from '../../onnx/builder';
import type { GradCtx, GradRule } from '../context';

/** Swaps the last two axes. */
function swapLast(c: GradCtx, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return c.transpose(x, perm);
}

/** Numpy broadcast of two batch shapes. */
function broadcast(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const x = a[i - r + a.length] ?? 1, y = b[i - r + b.length] ?? 1;
    return x === 1 ? y : x;
  });
}

const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

// Y = A B with A [..., M, K], B [..., K, N]: dA = dY B^T, dB = A^T dY, each summed over broadcast batch axes.
// 1-D operands are promoted ([K] -> [1, K] for A, [K, 1] for B) and the gradients reshaped back.
const matMul: GradRule = (c, [g]) => {
  const [a, b] = c.node.inputs;
  const ad = c.dims(a), bd = c.dims(b);
  const a2d = ad.length === 1 ? [1, ad[0]] : ad, b2d = bd.length === 1 ? [bd[0], 1] : bd;
  const a2 = ad.length === 1 ? c.reshape(a, a2d) : a, b2 = bd.length === 1 ? c.reshape(b, b2d) : b;
  const batch = broadcast(a2d.slice(0, -2), b2d.slice(0, -2));
  const [M, K] = a2d.slice(-2), N = b2d[b2d.length - 1];
  const y2d = [...batch, M, N];
  const g2 = same(y2d, c.dims(c.out())) ? g! : c.reshape(g!, y2d);
  const back = (v: string, d2: number[], d: number[]) => (same(d2, d) ? v : c.reshape(v, d));
  const rows = a2d.slice(0, -1).reduce((x, y) => x * y, 1);
  return [
    c.grad(0, () => {
      if (b2d.length === 2 && same(a2d, [...batch, M, K])) {
        // a 2-D weight: one Gemm with transB on [rows, N], no transposed copy of the weight (onnxruntime would
        // constant-fold Transpose(W) into a second copy of every frozen linear weight: 0.4 GiB in float16 on SD 1.5)
        const g2d = y2d.length === 2 ? g2 : c.reshape(g2, [rows, N]);
        const ga = c.op('Gemm', [g2d, b2], { transB: A.i(1) });
        return back(a2d.length === 2 ? ga : c.reshape(ga, a2d), a2d, ad);
      }
      return back(c.unbroadcast(c.op('MatMul', [g2, swapLast(c, b2, b2d.length)]), [...batch, M, K], a2d), a2d, ad);
    }),
    c.grad(1, () => {
      if (b2d.length === 2 && y2d.length > 2 && same(a2d, [...batch, M, K])) {
        // a 2-D weight under batched activations: one [K, P] x [P, N] product instead of a batched one plus a sum
        return back(c.op('Gemm', [c.reshape(a2, [rows, K]), c.reshape(g2, [rows, N])], { transA: A.i(1) }), b2d, bd);
      }
      return back(c.unbroadcast(c.op('MatMul', [swapLast(c, a2, a2d.length), g2]), [...batch, K, N], b2d), b2d, bd);
    }),
  ];
};

// Y = alpha A' B' + beta C with A' = transA ? A^T : A, B' likewise:
// dA' = alpha dY B'^T, dB' = alpha A'^T dY, dC = beta dY summed to C's shape; transposed back when transA/transB.
const gemm: GradRule = (c, [g]) => {
  const [a, b, cc] = c.node.inputs;
  const alpha = A.f(c.attrF('alpha', 1)), beta = c.attrF('beta', 1);
  const ta = c.attrI('transA', 0), tb = c.attrI('transB', 0);
  return [
    c.grad(0, () => (ta
      ? c.op('Gemm', [b, g!], { alpha, transA: A.i(tb), transB: A.i(1) })
      : c.op('Gemm', [g!, b], { alpha, transA: A.i(0), transB: A.i(tb ? 0 : 1) }))),
    c.grad(1, () => (tb
      ? c.op('Gemm', [g!, a], { alpha, transA: A.i(1), transB: A.i(ta) })
      : c.op('Gemm', [a, g!], { alpha, transA: A.i(ta ? 0 : 1), transB: A.i(0) }))),
    cc ? c.bgrad(2, () => (beta === 1 ? g! : c.op('Mul', [g!, c.scalar(beta, cc)]))) : null,
  ];
};

export const LINALG_RULES: Record<string, GradRule> = { MatMul: matMul, Gemm: gemm };
