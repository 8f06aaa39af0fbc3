import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, clipGradNorm } from '../../../src/core/train/adamw';

const GRADS = [[0.1, -0.2, 0.3], [-0.05, 0.4, 0.0], [0.2, 0.2, -0.1]];
// torch.optim.AdamW(lr=0.01, weight_decay=0.1) on p = [1, -2, 0.5], worked by hand with PyTorch's formulas
const EXPECTED = [[0.989, -1.988, 0.4895], [0.98534763, -1.98967304, 0.48230992], [0.97778117, -1.99287577, 0.47893625]];
const CFG = { lr: 0.01, weightDecay: 0.1 };

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6): void {
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
}

test('AdamW follows PyTorch: decoupled weight decay and bias-corrected moments', () => {
  const opt = new AdamW(CFG);
  const p = new Map([['w', Float32Array.of(1, -2, 0.5)]]);
  GRADS.forEach((g, k) => {
    opt.update(p, new Map([['w', Float32Array.from(g)]]));
    close(p.get('w')!, EXPECTED[k]);
  });
  assert.equal(opt.step, 3);
});

test('epsilon is added to the bias-corrected root of the second moment, as PyTorch does (train_adam_epsilon means what it means in TRL)', () => {
  // first step: m^ = g and v^ = g^2, so p -= lr * g / (|g| + eps) = 0.01 * 0.1 / 0.2; eps under the root would give 0.1 / 0.33
  const opt = new AdamW({ lr: 0.01, eps: 0.1, weightDecay: 0 });
  const p = new Map([['w', Float32Array.of(1, 1)]]);
  opt.update(p, new Map([['w', Float32Array.of(0.1, -0.3)]]));
  close(p.get('w')!, [1 - 0.01 * 0.1 / 0.2, 1 + 0.01 * 0.3 / 0.4]);
});

test('a zero gradient only decays the weights', () => {
  const opt = new AdamW(CFG);
  const p = new Map([['w', Float32Array.of(2, -4)]]);
  opt.update(p, new Map([['w', new Float32Array(2)]]));
  close(p.get('w')!, [2 * 0.999, -4 * 0.999]);
});

test('parameters named by noDecay take the Adam step without weight decay', () => {
  const opt = new AdamW({ ...CFG, noDecay: (name) => name === 'b' });
  const p = new Map([['w', Float32Array.of(2, -4)], ['b', Float32Array.of(2, -4)]]);
  opt.update(p, new Map([['w', new Float32Array(2)], ['b', new Float32Array(2)]]));
  close(p.get('w')!, [2 * 0.999, -4 * 0.999]);
  close(p.get('b')!, [2, -4], 0);
  const fresh = new AdamW({ ...CFG, noDecay: (name) => name === 'b' });
  const withGrad = new Map([['w', Float32Array.of(1, -2, 0.5)], ['b', Float32Array.of(1, -2, 0.5)]]);
  const plain = new AdamW({ ...CFG, weightDecay: 0 });
  const plainP = new Map([['b', Float32Array.of(1, -2, 0.5)]]);
  GRADS.forEach((g) => {
    fresh.update(withGrad, new Map([['w', Float32Array.from(g)], ['b', Float32Array.from(g)]]));
    plain.update(plainP, new Map([['b', Float32Array.from(g)]]));
  });
  close(withGrad.get('w')!, EXPECTED[2]);
  close(withGrad.get('b')!, plainP.get('b')!, 0);
});

test('clipGradNorm scales to the global L2 norm like clip_grad_norm_ and returns the norm', () => {
  const a = Float32Array.of(3), b = Float32Array.of(4);
  assert.equal(clipGradNorm([a, b], 1), 5);
  close([a[0], b[0]], [3 / (5 + 1e-6), 4 / (5 + 1e-6)]);
  const c = Float32Array.of(0.3, 0.4);
  clipGradNorm([c], 1);
  close(c, Float32Array.of(0.3, 0.4), 0);
});

test('in-memory state() / fromState() continues exactly and is a copy, not a view', () => {
  const opt = new AdamW(CFG);
  const p = new Map([['w', Float32Array.of(1, -2, 0.5)]]);
  opt.update(p, new Map([['w', Float32Array.from(GRADS[0])]]));
  const state = opt.state();
  opt.update(new Map([['w', Float32Array.of(0, 0, 0)]]), new Map([['w', Float32Array.of(9, 9, 9)]])); // must not leak into `state`
  const resumed = AdamW.fromState(state, CFG);
  assert.equal(resumed.step, 1);
  for (const g of GRADS.slice(1)) resumed.update(p, new Map([['w', Float32Array.from(g)]]));
  close(p.get('w')!, EXPECTED[2]);
  assert.throws(() => AdamW.fromState({ step: -1, tensors: new Map() }, CFG, 'ckpt'), /ckpt: "step" must be a non-negative integer/);
});
