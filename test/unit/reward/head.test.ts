import { test } from 'node:test';
import assert from 'node:assert/strict';
import { btLoss, LinearHead, MlpHead, type PairExample } from '../../../src/core/reward/head';
import { btLossAndGrad, fitHead, fitHeadUsingAll, meanLoss } from '../../../src/core/reward/trainer';
import { pairMetrics } from '../../../src/core/reward/metrics';
import { mulberry32 } from '../../../src/core/random';

function randomExamples(n: number, d: number, seed: number): PairExample[] {
  const rng = mulberry32(seed);
  const v = () => Float32Array.from({ length: d }, () => rng() * 2 - 1);
  return Array.from({ length: n }, (_, i) => ({ left: v(), right: v(), y: [1, 0, 0.5][i % 3] }));
}

test('ties count as half a win: the BT loss of a tie is symmetric and minimal at equal rewards', () => {
  assert.ok(Math.abs(btLoss(0.7, 0.5) - btLoss(-0.7, 0.5)) < 1e-12);
  assert.ok(btLoss(0, 0.5) < btLoss(0.3, 0.5));
  assert.ok(btLoss(2, 1) < btLoss(-2, 1));
});

for (const kind of ['linear', 'mlp'] as const) {
  test(`${kind} head: analytic BT gradients match finite differences`, () => {
    const d = 5, rng = mulberry32(3);
    const mean = Float32Array.from({ length: d }, () => rng() * 0.2), std = Float32Array.from({ length: d }, () => 0.5 + rng());
    const head = kind === 'linear' ? new LinearHead(mean, std, Float32Array.from({ length: d }, () => rng() - 0.5)) : MlpHead.init(mean, std, 4, rng);
    const batch = randomExamples(6, d, 9);
    const { grads } = btLossAndGrad(head, batch);
    for (const [name, p] of head.params()) {
      for (let i = 0; i < p.data.length; i++) {
        const orig = p.data[i], h = 1e-2;
        p.data[i] = orig + h; const up = meanLoss(head, batch);
        p.data[i] = orig - h; const down = meanLoss(head, batch);
        p.data[i] = orig;
        const num = (up - down) / (2 * h), ana = grads.get(name)!.data[i];
        assert.ok(Math.abs(num - ana) < 2e-3 + 1e-2 * Math.abs(num), `${name}[${i}]: analytic ${ana} vs numeric ${num}`);
      }
    }
  });
}

test('training recovers a hidden linear preference and reports calibrated probabilities', async () => {
  const d = 6, rng = mulberry32(5);
  const wTrue = [1.5, -1, 0.5, 0, 0, 0];
  const make = (n: number) => Array.from({ length: n }, () => {
    const left = Float32Array.from({ length: d }, () => rng() * 2 - 1), right = Float32Array.from({ length: d }, () => rng() * 2 - 1);
    const diff = wTrue.reduce((s, w, i) => s + w * (left[i] - right[i]), 0);
    return { left, right, y: rng() < 1 / (1 + Math.exp(-diff)) ? 1 : 0 };
  });
  const train = make(600), val = make(100), test = make(2000);
  const oracle = pairMetrics(new LinearHead(new Float32Array(d), new Float32Array(d).fill(1), Float32Array.from(wTrue)), test);
  for (const kind of ['linear', 'mlp'] as const) {
    const { head } = await fitHead(train, val, { kind, seed: 1 });
    const m = pairMetrics(head, test);
    assert.ok(m.accuracy > oracle.accuracy - 0.03, `${kind}: accuracy ${m.accuracy} vs the true preference's ${oracle.accuracy}`);
    assert.ok(m.ece < 0.06, `${kind}: calibration error ${m.ece}`);
  }
});

test('early stopping keeps the epoch with the best validation loss', async () => {
  const train = randomExamples(40, 20, 1).map((e) => ({ ...e, y: e.y === 0.5 ? 1 : e.y })); // pure noise: only overfitting is possible
  const val = randomExamples(40, 20, 2).map((e) => ({ ...e, y: e.y === 0.5 ? 0 : e.y }));
  const r = await fitHead(train, val, { patience: 10, maxEpochs: 300 });
  const best = Math.min(...r.history.map((h) => h.valLoss));
  assert.ok(r.history.length < 300, 'stopped before the epoch limit');
  assert.ok(Math.abs(meanLoss(r.head, val) - best) < 1e-6, 'restored the best-validation weights');
});

test('a head with no preference between the two images counts half right, whichever side won', () => {
  const same = Float32Array.of(1, 2);
  const flat = new LinearHead(new Float32Array(2), new Float32Array(2).fill(1), new Float32Array(2));
  const xs: PairExample[] = [{ left: same, right: same, y: 1 }, { left: same, right: same, y: 0 }, { left: same, right: same, y: 0 }];
  assert.equal(pairMetrics(flat, xs).accuracy, 0.5);
});

test('held-out accuracy is over the pairs with a winner: ties are neither right nor wrong', () => {
  const head = new LinearHead(new Float32Array(1), new Float32Array(1).fill(1), Float32Array.of(1)); // prefers the larger feature
  const big = Float32Array.of(1), small = Float32Array.of(0);
  const m = pairMetrics(head, [{ left: big, right: small, y: 1 }, { left: big, right: small, y: 0 }, { left: big, right: small, y: 0.5 }, { left: big, right: small, y: 0.5 }]);
  assert.deepEqual([m.n, m.decisive, m.accuracy], [4, 2, 0.5]);
});

test('the comparisons that picked the epoch count still train the saved model', async () => {
  // Only the early-stopping comparisons show that the rater likes feature 1; the others hold it fixed.
  const rng = mulberry32(7);
  const pair = (f1Varies: boolean) => {
    const left = Float32Array.of(rng() * 2 - 1, f1Varies ? rng() * 2 - 1 : 0), right = Float32Array.of(rng() * 2 - 1, f1Varies ? rng() * 2 - 1 : 0);
    return { left, right, y: left[0] + left[1] > right[0] + right[1] ? 1 : 0 };
  };
  const train = Array.from({ length: 40 }, () => pair(false)), val = Array.from({ length: 12 }, () => pair(true));
  const { head } = await fitHeadUsingAll(train, val, { seed: 1 });
  assert.ok(head.score(Float32Array.of(0, 1)) > head.score(Float32Array.of(0, -1)), 'the saved model learned what only the early-stopping ratings taught');
});
