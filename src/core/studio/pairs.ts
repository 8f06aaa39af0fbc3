/** Generated pairs on disk (`<exp>/samples/<pairId>/{a,b}.png` + `pair.json`) and the rating queue built from them. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFile, resolveInside, resolveInsideOrUndefined } from '../fsutil';
import { encodePng, type RasterImage } from '../image/png';
import type { QueuedPair } from '../../protocol';
import { pairIdFor, schedulePairs, type PairProposal } from '../reward/schedule';
import type { Rating } from '../reward/types';
import { encodePairLatents, PAIR_LATENTS_FILE, type ImageLatent } from '../experiment/pairLatents';

/** Folder of generated pairs inside an experiment. */
export const SAMPLES_DIR = 'samples';
/** Written last into a pair folder: its presence marks a complete pair. */
export const PAIR_FILE = 'pair.json';

/** One generated pair as recorded in `pair.json` (paths relative to the experiment folder). */
export interface StoredPair {
  pairId: string;
  prompt: string;
  a: string;
  b: string;
  seeds: [number, number];
  createdAt: string;
}

/** What to generate next: a prompt and two fresh seeds. */
export interface PairPlan {
  pairId: string;
  prompt: string;
  seeds: [number, number];
  /** Experiment-relative paths the images go to. */
  a: string;
  b: string;
}

/** Complete pairs under `<exp>/samples/`, oldest first; half-written folders are ignored. */
export function listPairs(experimentDir: string): StoredPair[] {
  const root = path.join(experimentDir, SAMPLES_DIR);
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  const out: StoredPair[] = [];
  for (const n of names) {
    try {
      const p = JSON.parse(fs.readFileSync(path.join(root, n, PAIR_FILE), 'utf8')) as StoredPair;
      // image paths come from a file anyone can edit: a pair whose images lie outside the experiment is left out
      if (p.pairId === n && typeof p.prompt === 'string' && resolveInsideOrUndefined(experimentDir, p.a) && resolveInsideOrUndefined(experimentDir, p.b)) out.push(p);
    } catch {
      // not a complete pair (generation was interrupted); it is regenerated under a new id
    }
  }
  return out.sort((x, y) => x.createdAt.localeCompare(y.createdAt) || x.pairId.localeCompare(y.pairId));
}

/** Plans `count` new pairs: the least-covered prompts first, seeds continuing after the highest used one. */
export function planPairs(prompts: readonly string[], existing: readonly StoredPair[], count: number, baseSeed = 0): PairPlan[] {
  if (prompts.length === 0) throw new Error('the experiment has no prompts; add prompts to experiment.json before rating');
  const used = new Map<string, number>(prompts.map((p) => [p, 0]));
  for (const p of existing) if (used.has(p.prompt)) used.set(p.prompt, used.get(p.prompt)! + 1);
  let seed = Math.max(baseSeed - 1, ...existing.flatMap((p) => p.seeds)) + 1;
  const out: PairPlan[] = [];
  for (let k = 0; k < count; k++) {
    const prompt = [...used.entries()].sort((x, y) => x[1] - y[1] || prompts.indexOf(x[0]) - prompts.indexOf(y[0]))[0][0];
    used.set(prompt, used.get(prompt)! + 1);
    out.push(planPair(prompt, seed));
    seed += 2;
  }
  return out;
}

/** The pair of `prompt` with seeds `firstSeed` and `firstSeed + 1`: its id and where its images go. */
export function planPair(prompt: string, firstSeed: number): PairPlan {
  const pairId = `pair-${firstSeed}-${createHash('sha256').update(prompt).digest('hex').slice(0, 8)}`;
  return { pairId, prompt, seeds: [firstSeed, firstSeed + 1], a: `${SAMPLES_DIR}/${pairId}/a.png`, b: `${SAMPLES_DIR}/${pairId}/b.png` };
}

/** An image to store with the PNG text chunks that say how it was made. */
export interface PairImage {
  image: RasterImage;
  metadata: Record<string, string>;
  /** The latent the image was decoded from (kept for Diffusion-DPO, see pairLatents.ts). */
  latent?: ImageLatent;
}

/**
 * Writes a pair folder: a.png and b.png, the latents they were decoded from (when both images carry one), then
 * `pair.json` last (each atomically), so a listed pair is complete. A failure (a full disk) removes what it wrote, so
 * no half pair is left behind.
 */
export async function writePair(experimentDir: string, plan: PairPlan, images: readonly [PairImage, PairImage]): Promise<StoredPair> {
  const dir = resolveInside(experimentDir, path.dirname(plan.a));
  const [a, b] = [resolveInside(experimentDir, plan.a), resolveInside(experimentDir, plan.b)];
  const latentsFile = path.join(dir, PAIR_LATENTS_FILE);
  await fs.promises.mkdir(dir, { recursive: true });
  try {
    await atomicWriteFile(a, encodePng(images[0].image, images[0].metadata));
    await atomicWriteFile(b, encodePng(images[1].image, images[1].metadata));
    const [la, lb] = [images[0].latent, images[1].latent];
    if (la && lb) await atomicWriteFile(latentsFile, encodePairLatents({ [path.basename(a, '.png')]: la, [path.basename(b, '.png')]: lb }));
    const pair: StoredPair = { ...plan, createdAt: new Date().toISOString() };
    await atomicWriteFile(path.join(dir, PAIR_FILE), JSON.stringify(pair, null, 1) + '\n');
    return pair;
  } catch (e) {
    await Promise.all([a, b, latentsFile].map((f) => fs.promises.rm(f, { force: true })));
    await fs.promises.rmdir(dir).catch(() => undefined); // only when nothing else is in it
    throw e;
  }
}

/** Left/right order of a pair, fixed by its id so a reload shows the same sides. */
export function sidesOf(pairId: string): 'ab' | 'ba' {
  return createHash('sha256').update(pairId).digest()[0] & 1 ? 'ba' : 'ab';
}

/** A fresh pair as a queue item. */
export function freshItem(p: Pick<StoredPair, 'pairId' | 'prompt' | 'a' | 'b'>): QueuedPair {
  const sideOrder = sidesOf(p.pairId);
  return { id: p.pairId, pairId: p.pairId, prompt: p.prompt, left: sideOrder === 'ab' ? p.a : p.b, right: sideOrder === 'ab' ? p.b : p.a, sideOrder };
}

/**
 * The rating queue: side-swapped repeats of earlier decisive ratings as they come due (see `dueRepeats`), to measure
 * the rater's consistency; then every pair nobody has rated yet, in generation order.
 */
export function buildQueue(pairs: readonly StoredPair[], ratings: readonly Rating[], repeatEvery = 5): QueuedPair[] {
  return queueOf(pairs, ratings.map((r) => r.pairId), dueRepeats(ratings, repeatEvery));
}

/**
 * The queue from its parts: `repeats` first, then the pairs not in `ratedPairs`, in generation order. A pair is rated
 * under its folder's id, or under the scheduler's id of its two images (`pairIdFor`), which ratings of scheduled pairs
 * carry (the demo's simulated rater rates pairs the scheduler draws across a prompt's images).
 */
export function queueOf(pairs: readonly StoredPair[], ratedPairs: Iterable<string>, repeats: readonly QueuedPair[]): QueuedPair[] {
  const rated = new Set(ratedPairs);
  return [...repeats, ...pairs.filter((p) => !rated.has(p.pairId) && !rated.has(pairIdFor(p.a, p.b))).map(freshItem)];
}

/** Side-swapped repeats of earlier decisive ratings (chosen by the pair scheduler) due now: one per `repeatEvery` ratings given. */
export function dueRepeats(ratings: readonly Rating[], repeatEvery = 5): QueuedPair[] {
  if (repeatEvery <= 0) return [];
  const done = ratings.filter((r) => r.repeatOf).length;
  const due = Math.floor(ratings.filter((r) => !r.repeatOf).length / repeatEvery) - done;
  const repeats = due > 0 ? schedulePairs([], [...ratings], { count: due, repeatShare: 1, seed: ratings.length }) : [];
  return repeats.slice(0, due).map(toItem);
}

function toItem(p: PairProposal): QueuedPair {
  return { id: `${p.pairId}~${p.repeatOf}`, pairId: p.pairId, prompt: p.prompt, left: p.left, right: p.right, sideOrder: p.sideOrder, repeatOf: p.repeatOf };
}
