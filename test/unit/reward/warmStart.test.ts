// A personal head warm-started from a prior: with few ratings it knows the rater better than a cold head, the card
// says how much at each count, and the saved head scores as the trained one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { statsBackbone } from '../../../src/core/reward/backbone';
import { trainExperimentReward } from '../../../src/core/reward/experiment';
import { loadRewardModel } from '../../../src/core/reward/model';
import { openRewardScorer } from '../../../src/core/reward/scorer';
import { readSummary } from '../../../src/core/studio/summary';
import { fitPriorScale, WarmHead } from '../../../src/core/reward/warmStart';
import { mulberry32 } from '../../../src/core/random';
import { randomShape, renderShape } from '../../../src/core/reward/sim';
import { makeSimulatedExperiment } from './helpers/simulatedExperiment';
import { foregroundStats } from '../../../src/core/reward/features';
import type { ImageRGB } from '../../../src/core/image/rgb';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-warm-'));

test('the prior\'s scale is the Bradley–Terry fit: large for a prior that orders the comparisons, 0 for one that orders them backwards', () => {
  const rng = mulberry32(2);
  const xs = Array.from({ length: 40 }, () => {
    const a = rng(), b = rng();
    const p = 1 / (1 + Math.exp(-3 * (a - b)));
    return { left: Float32Array.of(a), right: Float32Array.of(b), y: rng() < p ? 1 : 0 };
  });
  const a = fitPriorScale((x) => x[0], xs);
  assert.ok(a > 1 && a < 10, `a prior whose unit is worth 3 log-odds: fitted ${a}`);
  assert.equal(fitPriorScale((x) => -x[0], xs), 0);
});

// The shapes world rated by a 90%-consistent simulated rater; the prior is the demo's taste read from the built-in
// features (shape_taste). For the rater who has that taste the prior is good; for one who wants blue over red it is
// a third wrong. The cold head learns from nothing either way.
async function warmAndCold(utility: ((img: ImageRGB) => number) | undefined, seeds: number[]) {
  const rows: { prior: number; points: { comparisons: number; cold: number; warm: number }[] }[] = [];
  for (const seed of seeds) {
    const dir = tmp();
    makeSimulatedExperiment(dir, { pairs: 300, seed, imagesPerPrompt: 40, utility });
    const { card, head } = await trainExperimentReward(dir, { backbone: statsBackbone, prior: 'shape_taste', seed: 0, heldOutShare: 0.4 });
    const w = card.warmStart!;
    assert.equal(w.prior, 'shape_taste');
    assert.deepEqual(w.points.map((p) => p.comparisons).slice(0, 4), [8, 16, 32, 64]);
    assert.equal(w.points.at(-1)!.comparisons, card.data.trainComparisons);
    assert.equal(w.points.at(-1)!.warm, card.heldOut.accuracy, 'the last warm point is the saved model');
    assert.ok(head instanceof WarmHead, 'the saved head is warm');
    assert.deepEqual(card.head.prior, { name: 'shape_taste', scale: (head as WarmHead).scale });
    console.log(`${utility ? 'blue-loving' : 'demo'} rater, seed ${seed}: prior alone ${(w.priorAccuracy * 100).toFixed(1)}%; ${w.points.map((p) => `${p.comparisons}: cold ${(p.cold * 100).toFixed(1)}% warm ${(p.warm * 100).toFixed(1)}%`).join(' | ')}`);
    rows.push({ prior: w.priorAccuracy, points: w.points });
  }
  const mean = (f: (r: (typeof rows)[number]) => number) => rows.reduce((s, r) => s + f(r), 0) / rows.length;
  const at = (k: number, side: 'cold' | 'warm') => mean((r) => r.points[k][side]);
  return { prior: mean((r) => r.prior), at };
}

test('warm-started from a good prior, a head knows the rater better than a cold one at 16 and 32 ratings, and no worse at 8', async () => {
  const { prior, at } = await warmAndCold(undefined, [1, 2, 3]);
  assert.ok(prior > 0.8, `the prior alone knows this rater: ${prior}`);
  assert.ok(at(0, 'warm') >= at(0, 'cold'), `8 comparisons: warm ${at(0, 'warm')} vs cold ${at(0, 'cold')}`);
  for (const k of [1, 2]) assert.ok(at(k, 'warm') >= at(k, 'cold') + 0.05, `point ${k}: warm ${at(k, 'warm')} vs cold ${at(k, 'cold')}`);
});

test('a few dozen ratings move a prior that is partly wrong: at 64 the warm head is as good as the cold one', async () => {
  const blueLoving = (img: ImageRGB) => { const s = foregroundStats(img); return 2 * Math.sqrt(s.area) - 2 * Math.hypot(s.cx - 0.5, s.cy - 0.5) - (s.r - s.b); };
  const { prior, at } = await warmAndCold(blueLoving, [1, 2, 3]);
  assert.ok(prior < 0.6, `the prior alone gets this rater wrong: ${prior}`);
  assert.ok(at(3, 'warm') >= at(3, 'cold') - 0.03, `at 64 comparisons: warm ${at(3, 'warm')} vs cold ${at(3, 'cold')}`);
  assert.ok(at(3, 'warm') >= 0.75, `at 64 comparisons the warm head has learned the rater: ${at(3, 'warm')}`);
});

test('a saved warm head scores as the trained one, through the scorer DDPO uses, and a cold run records no prior', async () => {
  const dir = tmp();
  makeSimulatedExperiment(dir, { pairs: 60, seed: 5 });
  const { head } = await trainExperimentReward(dir, { backbone: statsBackbone, prior: 'shape_taste', seed: 0 });
  const saved = loadRewardModel(dir);
  assert.ok(saved.head instanceof WarmHead && saved.head.prior.name === 'shape_taste');
  assert.match(readSummary(dir, false).reward?.warmStart ?? '', /^Started from shape_taste \(\d+% before any rating\)\. Held-out accuracy, cold → warm: 8 comparisons \d+% → \d+%, 16 comparisons/, 'the tree\'s reward card says it');
  const rng = mulberry32(8);
  const images = Array.from({ length: 5 }, () => renderShape(randomShape(rng), 32));
  const scorer = await openRewardScorer(dir);
  const got = await scorer.score(images, images.map(() => 'a shape'));
  const want = (await statsBackbone.embed(images)).map((x) => head.score(x));
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-5 * (1 + Math.abs(want[i])), `image ${i}: ${g} vs ${want[i]}`));
  const cold = await trainExperimentReward(dir, { backbone: statsBackbone, seed: 0 });
  assert.equal(cold.card.warmStart, undefined);
  assert.equal(readSummary(dir, false).reward?.warmStart, undefined);
  assert.equal(cold.card.head.prior, undefined);
  assert.ok(!(loadRewardModel(dir).head instanceof WarmHead));
});

test('an unknown prior in experiment.json is refused by name, before anything is written', async () => {
  const dir = tmp();
  makeSimulatedExperiment(dir, { pairs: 30, seed: 6 });
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({ schemaVersion: 1, name: 'x', createdAt: new Date().toISOString(), baseModel: { id: 'x' }, prompts: [], rewardPrior: 'beauty' }));
  await assert.rejects(trainExperimentReward(dir, { backbone: statsBackbone }), /unknown reward prior "beauty".*aesthetic, clip_score, shape_taste/);
  assert.equal(fs.existsSync(path.join(dir, 'reward', 'card.json')), false);
});
