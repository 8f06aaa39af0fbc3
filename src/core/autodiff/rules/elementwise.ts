/** Gradient rules of elementwise ops; `bgrad` sums broadcast axes back to each input's shape. */
import { A } from '../../onnx/builder';
import type { GradCtx, GradRule } from '../context';

const mul = (c: GradCtx, a: string, b: string) => c.op('Mul', [a, b]);
const num = (c: GradCtx, v: number) => c.scalar(v, c.out());

/** Gelu'(x) for the exact (erf) and tanh forms. */
function geluDerivative(c: GradCtx, x: string): string {
  if (c.attrS('approximate', 'none') === 'tanh') {
    // y = x/2 (1 + tanh u), u = k (x + 0.044715 x^3): y' = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3*0.044715 x^2)
    const k = Math.sqrt(2 / Math.PI);
    const x2 = mul(c, x, x);
    const u = mul(c, num(c, k), c.op('Add', [x, mul(c, num(c, 0.044715), mul(c, x2, x))]));
    const t = c.op('Tanh', [u]);
    const du = mul(c, num(c, k), c.op('Add', [num(c, 1), mul(c, num(c, 3 * 0.044715), x2)]));
    const sech2 = c.op('Sub', [num(c, 1), mul(c, t, t)]);
    return c.op('Add', [mul(c, num(c, 0.5), c.op('Add', [num(c, 1), t])), mul(c, mul(c, num(c, 0.5), x), mul(c, sech2, du))]);
  }
  // y = x Phi(x): y' = Phi(x) + x phi(x) = (1 + erf(x/sqrt2))/2 + x exp(-x^2/2)/sqrt(2 pi)
  const cdf = mul(c, num(c, 0.5), c.op('Add', [num(c, 1), c.op('Erf', [mul(c, x, num(c, Math.SQRT1_2))])]));
  const pdf = mul(c, num(c, 1 / Math.sqrt(2 * Math.PI)), c.op('Exp', [mul(c, num(c, -0.5), mul(c, x, x))]));
  return c.op('Add', [cdf, mul(c, x, pdf)]);
}

/** Max/Min: the gradient goes to the inputs equal to the result, split evenly on ties (as PyTorch). */
const selectGrad: GradRule = (c, [g]) => {
  const n = c.node.inputs.length;
  if (n === 1) return [g];
  const to = A.i(c.dtype(c.out()));
  const masks = c.node.inputs.map((x) => c.op('Cast', [c.op('Equal', [x, c.out()])], { to }));
  const share = c.op('Div', [g!, c.op('Sum', masks)]);
  return masks.map((mk, i) => c.bgrad(i, () => mul(c, share, mk)));
};

/** Clip: passes the gradient where min <= x <= max (bounds given as inputs since opset 11, attributes before). */
const clipGrad: GradRule = (c, [g]) => {
  const x = c.in(0);
  let lo: string | undefined = c.in(1) || undefined, hi: string | undefined = c.in(2) || undefined;
  if (c.opset < 11) {
    lo = c.node.attrs.min ? num(c, c.attrF('min', 0)) : undefined;
    hi = c.node.attrs.max ? num(c, c.attrF('max', 0)) : undefined;
  }
  const conds = [lo && c.op('Not', [c.op('Less', [x, lo])]), hi && c.op('Not', [c.op('Greater', [x, hi])])].filter((v): v is string => !!v);
  if (!conds.length) return [g];
  const inside = conds.length === 2 ? c.op('And', conds) : conds[0];
  return [c.op('Where', [inside, g!, num(c, 0)])];
};

export const ELEMENTWISE_RULES: Record<string, GradRule> = {
  // d(a+b) = da + db
  Add: (c, [g]) => [c.bgrad(0, () => g!), c.bgrad(1, () => g!)],
  // d(a-b) = da - db
  Sub: (c, [g]) => [c.bgrad(0, () => g!), c.bgrad(1, () => c.op('Neg', [g!]))],
  // d(ab) = b da + a db
  Mul: (c, [g]) => [c.bgrad(0, () => mul(c, g!, c.in(1))), c.bgrad(1, () => mul(c, g!, c.in(0)))],
  // d(a/b) = da/b - (a/b) db/b
  Div: (c, [g]) => [c.bgrad(0, () => c.op('Div', [g!, c.in(1)])), c.bgrad(1, () => c.op('Neg', [c.op('Div', [mul(c, g!, c.out()), c.in(1)])]))],
  // d(a^b) = b a^(b-1) da + a^b ln(a) db   (the ln term is 0 where a == 0, as in PyTorch)
  Pow: (c, [g]) => {
    const [a, b] = c.node.inputs;
    const bf = c.dtype(b) === c.dtype(a) ? b : c.op('Cast', [b], { to: A.i(c.dtype(a)) });
    return [
      c.bgrad(0, () => mul(c, g!, mul(c, bf, c.op('Pow', [a, c.op('Sub', [bf, num(c, 1)])])))),
      c.bgrad(1, () => c.op('Where', [c.op('Equal', [a, num(c, 0)]), num(c, 0), mul(c, g!, mul(c, c.out(), c.op('Log', [a])))])),
    ];
  },
  // d sqrt(x) = dx / (2 sqrt(x))
  Sqrt: (c, [g]) => [c.op('Div', [mul(c, g!, num(c, 0.5)), c.out()])],
  // d exp(x) = exp(x) dx
  Exp: (c, [g]) => [mul(c, g!, c.out())],
  // d ln(x) = dx / x
  Log: (c, [g]) => [c.op('Div', [g!, c.in(0)])],
  // d(-x) = -dx
  Neg: (c, [g]) => [c.op('Neg', [g!])],
  // d|x| = sign(x) dx
  Abs: (c, [g]) => [mul(c, g!, c.op('Sign', [c.in(0)]))],
  // d(1/x) = -dx / x^2 = -y^2 dx
  Reciprocal: (c, [g]) => [c.op('Neg', [mul(c, g!, mul(c, c.out(), c.out()))])],
  // d erf(x) = 2/sqrt(pi) exp(-x^2) dx
  Erf: (c, [g]) => [mul(c, g!, mul(c, num(c, 2 / Math.sqrt(Math.PI)), c.op('Exp', [c.op('Neg', [mul(c, c.in(0), c.in(0))])])))],
  // d sigmoid(x) = y (1 - y) dx
  Sigmoid: (c, [g]) => [mul(c, g!, mul(c, c.out(), c.op('Sub', [num(c, 1), c.out()])))],
  // d tanh(x) = (1 - y^2) dx
  Tanh: (c, [g]) => [mul(c, g!, c.op('Sub', [num(c, 1), mul(c, c.out(), c.out())]))],
  // d relu(x) = [y > 0] dx
  Relu: (c, [g]) => [c.op('Where', [c.op('Greater', [c.out(), num(c, 0)]), g!, num(c, 0)])],
  // d leaky(x) = (x > 0 ? 1 : alpha) dx
  LeakyRelu: (c, [g]) => [c.op('Where', [c.op('Greater', [c.in(0), num(c, 0)]), g!, mul(c, g!, num(c, c.attrF('alpha', 0.01)))])],
  // d softplus(x) = sigmoid(x) dx
  Softplus: (c, [g]) => [mul(c, g!, c.op('Sigmoid', [c.in(0)]))],
  // d sin(x) = cos(x) dx
  Sin: (c, [g]) => [mul(c, g!, c.op('Cos', [c.in(0)]))],
  // d cos(x) = -sin(x) dx
  Cos: (c, [g]) => [mul(c, g!, c.op('Neg', [c.op('Sin', [c.in(0)])]))],
  // see geluDerivative
  Gelu: (c, [g]) => [mul(c, g!, geluDerivative(c, c.in(0)))],
  Max: selectGrad,
  Min: selectGrad,
  Clip: clipGrad,
  // d where(c, a, b) = where(c, da, 0) + where(c, 0, db)
  Where: (c, [g]) => [null, c.bgrad(1, () => c.op('Where', [c.in(0), g!, num(c, 0)])), c.bgrad(2, () => c.op('Where', [c.in(0), num(c, 0), g!]))],
  // d sum(x_i) = sum(dx_i)
  Sum: (c, [g]) => c.node.inputs.map((_, i) => c.bgrad(i, () => g!)),
  // d mean(x_i) = sum(dx_i) / n
  Mean: (c, [g]) => c.node.inputs.map((_, i) => c.bgrad(i, () => mul(c, g!, num(c, 1 / c.node.inputs.length)))),
};
