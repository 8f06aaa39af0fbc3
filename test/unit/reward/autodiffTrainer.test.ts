import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutodiffHeadTrainer } from '../../../src/core/reward/autodiffTrainer';
import { LinearHead, MlpHead, type PairExample } from '../../../src/core/reward/head';
import { mulberry32 } from '../../../src/core/random';
import { btLossAndGrad, fitHead } from '../../../src/core/reward/trainer';

function examples(n: number, d: number, seed: number): PairExample[] {
  const rng = mulberry32(seed);
  const v = () => Float32Array.from({ length: d }, () => rng() * 4 - 2);
  return Array.from({ length: n }, (_, i) => ({ left: v(), right: v(), y: i % 5 === 0 ? 0.5 : rng() < 0.5 ? 1 : 0 }));
}

const maxRelErr = (a: Float32Array, b: Float32Array) => {
  let diff = 0, mag = 1e-12;
  for (let i = 0; i < a.length; i++) { diff = Math.max(diff, Math.abs(a[i] - b[i])); mag = Math.max(mag, Math.abs(b[i])); }
  return diff / mag;
};

test('the autodiff gradient graph of the Bradley–Terry loss agrees with the analytic gradients (linear and MLP heads)', async () => {
  const d = 6, batch = examples(9, d, 3);
  const mean = Float32Array.from({ length: d }, (_, i) => i * 0.1), std = Float32Array.from({ length: d }, (_, i) => 1 + i * 0.2);
  const rng = mulberry32(5);
  const heads = [new LinearHead(mean, std, Float32Array.from({ length: d }, () => rng() - 0.5)), MlpHead.init(mean, std, 5, rng)];
  for (const head of heads) {
    const analytic = btLossAndGrad(head, batch);
    const viaGraph = await new AutodiffHeadTrainer(head, { lr: 0.01 }).lossAndGrad(batch);
    assert.ok(Math.abs(viaGraph.loss - analytic.loss) < 1e-5 * Math.abs(analytic.loss), `${head.kind}: loss ${viaGraph.loss} vs ${analytic.loss}`);
    for (const [k, g] of analytic.grads) {
      const err = maxRelErr(viaGraph.grads.get(k)!.data, g.data);
      assert.ok(err < 1e-4, `${head.kind}.${k}: max relative gradient error ${err}`);
    }
  }
});

test('a head trained through the autodiff learns a hidden preference like the analytic trainer', async () => {
  const d = 5, rng = mulberry32(9), wTrue = [1.5, -1, 0.5, 0, 2];
  const make = (n: number) => Array.from({ length: n }, () => {
    const left = Float32Array.from({ length: d }, () => rng() * 2 - 1), right = Float32Array.from({ length: d }, () => rng() * 2 - 1);
    const diff = wTrue.reduce((s, w, i) => s + w * (left[i] - right[i]), 0);
    return { left, right, y: rng() < 1 / (1 + Math.exp(-diff)) ? 1 : 0 };
  });
  const train = make(200), val = make(50);
  const viaGraph = await fitHead(train, val, { seed: 1, maxEpochs: 60, makeTrainer: (h, a) => new AutodiffHeadTrainer(h, a) });
  const analytic = await fitHead(train, val, { seed: 1, maxEpochs: 60 });
  const wg = (viaGraph.head as LinearHead).w, wa = (analytic.head as LinearHead).w;
  assert.equal(viaGraph.bestEpoch, analytic.bestEpoch, 'same early-stopping epoch');
  assert.ok(maxRelErr(wg, wa) < 1e-3, `weights agree: ${wg} vs ${wa}`);
  // the learned weights point the way of the hidden preference (per standardised feature)
  assert.ok(wg[0] > 0 && wg[1] < 0 && wg[4] > 0, `learned ${Array.from(wg)}`);
});
