import { createHash } from 'node:crypto';
import { sigmoid } from './head';
import { mulberry32, shuffled } from '../random';
import type { QueuedPair } from '../../protocol';
import type { Rating } from './types';

/** The `k` candidates whose predicted win probability σ(margin) is closest to 1/2. */
export function mostUncertain<T>(cands: T[], margin: (c: T) => number, k: number): T[] {
  if (k <= 0) return [];
  return cands.map((c) => ({ c, u: Math.abs(sigmoid(margin(c)) - 0.5) })).sort((a, b) => a.u - b.u).slice(0, k).map((x) => x.c);
}

/** A generated image that can be put in a pair. */
export interface SampleRef {
  /** Experiment-relative path. */
  path: string;
  prompt: string;
  seed: number;
  /** Checkpoint (LoRA step or name) that produced it; undefined for the base model. */
  checkpoint?: string;
}

/** A pair to show, with the sides already chosen, and why the scheduler picked it. */
export interface PairProposal extends Omit<QueuedPair, 'id'> {
  reason: 'random' | 'uncertain' | 'repeat';
}

/** Options for schedulePairs. */
export interface ScheduleOptions {
  count: number;
  /** 'seed': same prompt and checkpoint, different seeds; 'checkpoint': same prompt and seed, different checkpoints. */
  mode?: 'seed' | 'checkpoint';
  /** Current reward of an image path, when a model exists; enables uncertainty picks. */
  score?: (path: string) => number | undefined;
  /** Share of the queue given to the pairs the model is least sure about (default 0.5). */
  activeShare?: number;
  /** Share of the queue given to side-swapped repeats of earlier decisive ratings (default 0.1). */
  repeatShare?: number;
  /** Random candidate pairs considered for the uncertainty picks. */
  candidates?: number;
  seed?: number;
}

/** Stable id of an unordered pair of images. */
export function pairIdFor(a: string, b: string): string {
  const [x, y] = a < b ? [a, b] : [b, a];
  return 'pair-' + createHash('sha256').update(x + '\0' + y).digest('hex').slice(0, 12);
}

/** The next pairs to rate: a mix of random pairs, uncertain pairs and side-swapped repeats, never re-proposing a rated pair. */
export function schedulePairs(samples: SampleRef[], ratings: Rating[], o: ScheduleOptions): PairProposal[] {
  const rng = mulberry32(o.seed ?? Date.now());
  const mode = o.mode ?? 'seed';
  const groupKey = (s: SampleRef) => (mode === 'seed' ? `${s.prompt}\0${s.checkpoint ?? ''}` : `${s.prompt}\0${s.seed}`);
  const byKey = new Map<string, SampleRef[]>();
  for (const s of samples) byKey.set(groupKey(s), [...(byKey.get(groupKey(s)) ?? []), s]);
  const groups = [...byKey.values()].filter((g) => g.length >= 2);
  const taken = new Set(ratings.map((r) => r.pairId));
  const out: PairProposal[] = [];
  const propose = (a: SampleRef, b: SampleRef, reason: PairProposal['reason']) => {
    const pairId = pairIdFor(a.path, b.path);
    if (taken.has(pairId)) return;
    taken.add(pairId);
    const [x, y] = a.path < b.path ? [a, b] : [b, a];
    const swap = rng() < 0.5;
    out.push({ pairId, prompt: a.prompt, left: swap ? y.path : x.path, right: swap ? x.path : y.path, sideOrder: swap ? 'ba' : 'ab', reason });
  };
  const randomCandidate = (): [SampleRef, SampleRef] | null => {
    if (!groups.length) return null;
    const g = groups[Math.floor(rng() * groups.length)];
    const i = Math.floor(rng() * g.length);
    let j = Math.floor(rng() * (g.length - 1));
    if (j >= i) j++;
    return [g[i], g[j]];
  };
  // Repeats: earlier decisive ratings not yet repeated, shown again with sides swapped.
  const repeated = new Set(ratings.flatMap((r) => (r.repeatOf ? [r.repeatOf] : [])));
  const repeatable = shuffled(ratings.filter((r) => !r.repeatOf && !repeated.has(r.id) && (r.choice === 'left' || r.choice === 'right')), rng);
  const nRepeat = Math.min(repeatable.length, Math.round(o.count * (o.repeatShare ?? 0.1)));
  for (const r of repeatable.slice(0, nRepeat)) {
    out.push({ pairId: r.pairId, prompt: r.prompt, left: r.right, right: r.left, sideOrder: r.sideOrder === 'ab' ? 'ba' : 'ab', repeatOf: r.id, reason: 'repeat' });
  }
  const score = o.score;
  const nActive = score ? Math.round(o.count * (o.activeShare ?? 0.5)) : 0;
  if (nActive > 0 && score) {
    const cands = new Map<string, [SampleRef, SampleRef]>();
    for (let k = 0; k < (o.candidates ?? 300); k++) {
      const c = randomCandidate();
      if (!c || score(c[0].path) === undefined || score(c[1].path) === undefined) continue;
      const id = pairIdFor(c[0].path, c[1].path);
      if (!taken.has(id)) cands.set(id, c);
    }
    for (const [a, b] of mostUncertain([...cands.values()], ([a, b]) => score(a.path)! - score(b.path)!, nActive)) propose(a, b, 'uncertain');
  }
  for (let tries = 0; out.length < o.count && tries < o.count * 50; tries++) {
    const c = randomCandidate();
    if (c) propose(c[0], c[1], 'random');
  }
  return shuffled(out, rng);
}
