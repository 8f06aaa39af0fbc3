// The reward card's held-out accuracy is only honest when the model never trained on those pairs, and a skip is no
// judgement: a trainer that records every comparison it is fed checks both on a real training.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeSimulatedExperiment } from './helpers/simulatedExperiment';
import { HELD_OUT_SHARE, isHeldOut, trainExperimentReward, type RatedExample } from '../../../src/core/reward/experiment';
import { pairIdFor } from '../../../src/core/reward/schedule';
import { PreferenceStore } from '../../../src/core/reward/store';
import { AnalyticAdamWTrainer, type HeadTrainer } from '../../../src/core/reward/trainer';

test('the reward model never trains on a held-out pair or on a skip', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-held-out-'));
  const { samples } = makeSimulatedExperiment(dir, { pairs: 60, imagesPerPrompt: 12, seed: 5 });
  const store = PreferenceStore.open(dir);
  for (let i = 0; i < 6; i++) {
    const [a, b] = [samples[2 * i].path, samples[2 * i + 1].path];
    store.append({ pairId: pairIdFor(a, b), prompt: samples[2 * i].prompt, left: a, right: b, choice: 'skip', rater: 'simulated', sideOrder: 'ab' });
  }
  store.close();

  const fed: RatedExample[] = [];
  const recording = (head: HeadTrainer['head'], cfg: ConstructorParameters<typeof AnalyticAdamWTrainer>[1]): HeadTrainer => {
    const inner = new AnalyticAdamWTrainer(head, cfg);
    return { head, step: (batch) => { fed.push(...(batch as RatedExample[])); return inner.step(batch); } };
  };
  const { card } = await trainExperimentReward(dir, { makeTrainer: recording, prior: 'none' });

  assert.ok(card.data.heldOutComparisons > 0 && fed.length > 0);
  const leaked = new Set(fed.filter((e) => isHeldOut(e.rating.pairId, HELD_OUT_SHARE)).map((e) => e.rating.pairId));
  assert.deepEqual([...leaked], [], 'held-out pairs the model trained on');
  assert.deepEqual(fed.filter((e) => e.rating.choice === 'skip').map((e) => e.rating.id), [], 'skips the model trained on');
  assert.equal(card.data.skips, 6);
  assert.deepEqual([card.data.comparisons, card.data.trainComparisons + card.data.heldOutComparisons], [60, 60], 'every rated, unskipped pair is in exactly one of the two');
});
