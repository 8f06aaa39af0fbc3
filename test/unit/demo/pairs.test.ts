import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSamples, rateSamples } from '../../../src/core/demo/pairs';
import { makeDemoRater, tasteUtility } from '../../../src/core/demo/taste';
import { readRatings } from '../../../src/core/reward/store';
import { readRatingLog } from '../../../src/core/studio/ratingLog';
import { decodePng } from '../../../src/core/image/png';
import { listPairs, planPair, queueOf } from '../../../src/core/studio/pairs';
import { ToyPolicy } from '../ddpo/toyPolicy';

const toy = () => new ToyPolicy(8, { lr: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });

test('the demo\'s samples are stored as the studio\'s pair folders, seeds k and k+1 together, and the studio lists them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-demo-pairs-'));
  const prompts = ['a big red circle', 'a small blue square'];
  const settings = { steps: 3, guidance: 2, eta: 1, seed: 5 };
  const s = await generateSamples(toy(), dir, prompts, 4, settings);
  const pairs = listPairs(dir);
  assert.deepEqual(pairs.map((p) => p.pairId).sort(), [planPair(prompts[0], 5), planPair(prompts[0], 7), planPair(prompts[1], 1005), planPair(prompts[1], 1007)].map((p) => p.pairId).sort());
  assert.deepEqual(s.refs.map((r) => r.seed), [5, 6, 7, 8, 1005, 1006, 1007, 1008]);
  for (const p of pairs) {
    const [a, b] = [p.a, p.b].map((rel) => s.refs.findIndex((r) => r.path === rel));
    assert.deepEqual([s.refs[a].seed, s.refs[b].seed, s.refs[a].prompt], [...p.seeds, p.prompt]);
    for (const k of [a, b]) {
      const png = decodePng(fs.readFileSync(path.join(dir, s.refs[k].path)));
      assert.deepEqual(png.data, s.images[k].data, 'the stored image is the sampled one');
      assert.equal(png.text?.seed, String(s.refs[k].seed));
    }
  }
  // One batch per prompt with consecutive seeds: the same images as sampling them together.
  const batch = await toy().sample({ prompts: new Array(4).fill(prompts[1]), negativePrompt: '', seed: 1005, numSteps: 3, eta: 1, guidanceScale: 2 });
  assert.deepEqual(s.images.slice(4).map((i) => i.data), batch.images.map((i) => i.data));
  await assert.rejects(generateSamples(toy(), dir, prompts, 3, settings), /must be even/);
});

// The simulated rater rates pairs the scheduler draws across a prompt's images; some are stored pair folders.
test('a demo experiment opened in the studio counts the stored pairs the simulated rater compared as rated and offers only the others', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-demo-pairs-'));
  const s = await generateSamples(toy(), dir, ['a big red circle', 'a small blue square'], 8, { steps: 3, guidance: 2, eta: 1, seed: 5 });
  const utils = s.images.map((img) => tasteUtility('big')(img));
  rateSamples(dir, s, makeDemoRater({ taste: 'big', typicalUtilities: utils, seed: 1 }), 30, 2);
  const compared = new Set(readRatings(dir).ratings.map((r) => [r.left, r.right].sort().join('|')));
  const pairs = listPairs(dir);
  const rated = pairs.filter((p) => compared.has([p.a, p.b].sort().join('|')));
  assert.ok(rated.length > 0 && rated.length < pairs.length, `${rated.length} of ${pairs.length} stored pairs rated: the test needs both kinds`);
  // what the rating panel shows: the queue from the log's view, as RatingSession builds it
  const view = readRatingLog(dir);
  const queue = queueOf(pairs, view.ratedPairs, view.dueRepeats);
  assert.deepEqual(queue.map((q) => q.pairId), pairs.filter((p) => !rated.includes(p)).map((p) => p.pairId));
  assert.ok(queue.every((q) => q.repeatOf === undefined), 'the person at the panel is not asked to repeat the simulated rater\'s decisions');
});
