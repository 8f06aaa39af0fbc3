import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodePng } from '../../../../src/core/image/png';
import { mulberry32 } from '../../../../src/core/random';
import { schedulePairs, type SampleRef } from '../../../../src/core/reward/schedule';
import { randomShape, renderShape, shapeTasteUtility, SimulatedRater, type SimulatedRaterOptions } from '../../../../src/core/reward/sim';
import type { ImageRGB } from '../../../../src/core/image/rgb';
import { PreferenceStore, readRatings } from '../../../../src/core/reward/store';

/**
 * Fill an experiment folder with procedural shape samples (`samples/<prompt-index>/seed-<n>.png`) and have a
 * simulated rater rate `pairs` scheduled pairs (including side-swapped repeats) into ratings.jsonl; `utility` is its
 * taste (default the demo's: shapeTasteUtility).
 */
export function makeSimulatedExperiment(dir: string, o: { pairs: number; imagesPerPrompt?: number; prompts?: string[]; rater?: Partial<SimulatedRaterOptions>; seed?: number; size?: number; utility?: (img: ImageRGB) => number }): { samples: SampleRef[]; rater: SimulatedRater } {
  const seed = o.seed ?? 1;
  const rng = mulberry32(seed);
  const prompts = o.prompts ?? ['a shape', 'a friendly shape'];
  const samples: SampleRef[] = [];
  const utils = new Map<string, number>();
  prompts.forEach((prompt, p) => {
    for (let s = 0; s < (o.imagesPerPrompt ?? 30); s++) {
      const img = renderShape(randomShape(rng), o.size ?? 32);
      const rel = `samples/p${p}/seed-${s}.png`;
      fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), encodePng({ ...img, channels: 3 }, { prompt, seed: String(s) }));
      samples.push({ path: rel, prompt, seed: s });
      utils.set(rel, (o.utility ?? shapeTasteUtility)(img));
    }
  });
  const rater = new SimulatedRater({ consistency: 0.9, tieRate: 0.05, typicalUtilities: [...utils.values()], seed: seed + 1, ...o.rater });
  const store = PreferenceStore.open(dir);
  try {
    let done = 0;
    for (let round = 0; done < o.pairs && round < 1000; round++) {
      for (const pr of schedulePairs(samples, readRatings(dir).ratings, { count: Math.min(20, o.pairs - done), seed: seed + round })) {
        const choice = rater.rateUtilities(utils.get(pr.left)!, utils.get(pr.right)!);
        store.append({ pairId: pr.pairId, prompt: pr.prompt, left: pr.left, right: pr.right, choice, rater: 'simulated', sideOrder: pr.sideOrder, repeatOf: pr.repeatOf });
        done++;
      }
    }
  } finally {
    store.close();
  }
  return { samples, rater };
}
