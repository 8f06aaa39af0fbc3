// Simulated rating sessions over procedural shape images: learning curves and active-vs-random selection.
import { statsFeatures } from './features';
import type { PairExample } from './head';
import { pairMetrics } from './metrics';
import { mulberry32, shuffled } from '../random';
import { mostUncertain } from './schedule';
import { randomShape, renderShape, SimulatedRater, type SimulatedRaterOptions } from './sim';
import { fitHeadUsingAll, type FitOptions } from './trainer';

/** Images reduced to what a simulation needs: built-in features and the rater's true utility. */
export interface SimWorld {
  feats: Float32Array[];
  util: number[];
}

/** Render `n` random shape images and measure them. */
export function makeShapeWorld(n: number, seed: number, size = 32, utility?: SimulatedRaterOptions['utility']): SimWorld {
  const rng = mulberry32(seed);
  const rater = new SimulatedRater({ consistency: 1, noise: 'uniform', utility });
  const feats: Float32Array[] = [], util: number[] = [];
  for (let i = 0; i < n; i++) {
    const img = renderShape(randomShape(rng), size);
    feats.push(statsFeatures(img));
    util.push(rater.utility(img));
  }
  return { feats, util };
}

/** Have the rater judge images i and j of a world (sides as given); null for a skip. */
export function ratePair(world: SimWorld, rater: SimulatedRater, i: number, j: number): PairExample | null {
  const c = rater.rateUtilities(world.util[i], world.util[j]);
  if (c === 'skip') return null;
  return { left: world.feats[i], right: world.feats[j], y: c === 'left' ? 1 : c === 'right' ? 0 : 0.5 };
}

function randomPair(n: number, rng: () => number): [number, number] {
  const i = Math.floor(rng() * n);
  let j = Math.floor(rng() * (n - 1));
  if (j >= i) j++;
  return [i, j];
}

/** A fixed evaluation set: fresh pairs of held-out images labelled by the rater, plus the rater's own ceiling on them. */
export function makeTestSet(world: SimWorld, rater: SimulatedRater, pairs: number, seed: number): { examples: PairExample[]; ceiling: number } {
  const rng = mulberry32(seed);
  const examples: PairExample[] = [];
  let agree = 0, decisive = 0;
  for (let k = 0; k < pairs; k++) {
    const [i, j] = randomPair(world.feats.length, rng);
    const ex = ratePair(world, rater, i, j);
    if (!ex) continue;
    examples.push(ex);
    if (ex.y !== 0.5) { decisive++; if ((ex.y === 1) === (world.util[i] > world.util[j])) agree++; }
  }
  return { examples, ceiling: agree / decisive };
}

/** Split off a validation share for early stopping (at least 3 examples when possible). */
export function splitForEarlyStopping(xs: PairExample[], rng: () => number, share = 0.15): { train: PairExample[]; val: PairExample[] } {
  const s = shuffled(xs, rng);
  const nVal = xs.length >= 12 ? Math.max(3, Math.round(xs.length * share)) : 0;
  return { train: s.slice(nVal), val: s.slice(0, nVal) };
}

/** Train on rated examples and score on a test set. */
export async function trainAndTest(rated: PairExample[], test: PairExample[], seed: number, fit: FitOptions = {}) {
  const { train, val } = splitForEarlyStopping(rated, mulberry32(seed + 17));
  const { head } = await fitHeadUsingAll(train, val, { seed, ...fit });
  return { head, metrics: pairMetrics(head, test) };
}

/** Options of the simulated session experiments. */
export interface SimSessionOptions {
  rater: SimulatedRaterOptions;
  seed?: number;
  poolImages?: number;
  testImages?: number;
  testPairs?: number;
  fit?: FitOptions;
}

/** The session's rater, with its noise level set from the pool's utilities. */
function makeRater(o: SimSessionOptions, pool: SimWorld, seed: number): SimulatedRater {
  return new SimulatedRater({ typicalUtilities: pool.util, ...o.rater, seed });
}

/** Held-out accuracy against the number of randomly chosen rated pairs. */
export async function learningCurve(counts: number[], o: SimSessionOptions) {
  const seed = o.seed ?? 1;
  const pool = makeShapeWorld(o.poolImages ?? 400, seed);
  const testWorld = makeShapeWorld(o.testImages ?? 400, seed + 1000);
  const rater = makeRater(o, pool, seed + 7);
  const { examples: test, ceiling } = makeTestSet(testWorld, rater, o.testPairs ?? 2000, seed + 3);
  const rng = mulberry32(seed + 5);
  const rated: PairExample[] = [];
  const points: { pairs: number; accuracy: number; logLoss: number; ece: number }[] = [];
  for (const n of [...counts].sort((a, b) => a - b)) {
    while (rated.length < n) {
      const [i, j] = randomPair(pool.feats.length, rng);
      const ex = ratePair(pool, rater, i, j);
      if (ex) rated.push(ex);
    }
    const { metrics } = await trainAndTest(rated, test, seed, o.fit);
    points.push({ pairs: n, accuracy: metrics.accuracy, logLoss: metrics.logLoss, ece: metrics.ece });
  }
  return { ceiling, points };
}

/**
 * Run a rating session pair by pair, retraining every `step` ratings. 'active' fills `activeShare` of each
 * batch with the candidate pairs the current model is least sure about (the rest random), 'random' only random.
 */
export async function simulateSession(mode: 'active' | 'random', budget: number, o: SimSessionOptions & { step?: number; start?: number; activeShare?: number; candidates?: number }) {
  const seed = o.seed ?? 1, step = o.step ?? 10, start = o.start ?? 20, share = o.activeShare ?? 0.7, nCand = o.candidates ?? 300;
  const pool = makeShapeWorld(o.poolImages ?? 400, seed);
  const testWorld = makeShapeWorld(o.testImages ?? 400, seed + 1000);
  const rater = makeRater(o, pool, seed + 7);
  const { examples: test, ceiling } = makeTestSet(testWorld, makeRater(o, pool, seed + 9), o.testPairs ?? 2000, seed + 3);
  const rng = mulberry32(seed + (mode === 'active' ? 11 : 13));
  const rated: PairExample[] = [];
  const curve: { pairs: number; accuracy: number }[] = [];
  const rate = (i: number, j: number) => { const ex = ratePair(pool, rater, i, j); if (ex) rated.push(ex); };
  while (rated.length < start) rate(...randomPair(pool.feats.length, rng));
  while (rated.length < budget) {
    const { head, metrics } = await trainAndTest(rated, test, seed, o.fit);
    curve.push({ pairs: rated.length, accuracy: metrics.accuracy });
    const nActive = mode === 'active' ? Math.round(step * share) : 0;
    const cands = Array.from({ length: nCand }, () => randomPair(pool.feats.length, rng));
    const scores = pool.feats.map((f) => head.score(f));
    for (const [i, j] of mostUncertain(cands, ([i, j]) => scores[i] - scores[j], nActive)) rate(i, j);
    for (let k = nActive; k < step; k++) rate(...randomPair(pool.feats.length, rng));
  }
  curve.push({ pairs: rated.length, accuracy: (await trainAndTest(rated, test, seed, o.fit)).metrics.accuracy });
  return { ceiling, curve };
}
