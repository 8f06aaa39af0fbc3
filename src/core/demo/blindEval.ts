/** Phase 5: base and tuned images of held-out prompts and seeds, shown to the simulated rater with sides shuffled. */
import type { Policy } from '../ddpo/types';
import { mulberry32 } from '../random';
import type { SimulatedRater } from '../reward/sim';
import { blindOutcome, scoreBlind, type BlindOutcome, type BlindScore } from '../reward/blindScore';
import type { ImageRGB } from '../image/rgb';
import type { Choice } from '../../protocol';
import type { SampleSettings } from './pairs';

/** Images of every held-out prompt (rows) and seed (columns), rendered by one model state. */
export type EvalImages = ImageRGB[][];

/** Renders `prompts` x `seeds` with the policy's current weights (seeds must be consecutive: image k uses seed + k). */
export async function renderEvalSet(policy: Pick<Policy, 'sample'>, prompts: readonly string[], firstSeed: number, seeds: number, s: SampleSettings & { signal?: AbortSignal; onRow?: (done: number, total: number) => void }): Promise<EvalImages> {
  const rows: EvalImages = [];
  for (const prompt of prompts) {
    s.signal?.throwIfAborted();
    const r = await policy.sample({ prompts: new Array(seeds).fill(prompt), negativePrompt: '', seed: firstSeed, numSteps: s.steps, eta: s.eta, guidanceScale: s.guidance, signal: s.signal });
    rows.push(r.images);
    s.onRow?.(rows.length, prompts.length);
  }
  return rows;
}

/** One blind comparison: which side the tuned image was shown on and what the rater answered. */
export interface BlindJudgement {
  prompt: string;
  seed: number;
  tunedSide: 'left' | 'right';
  choice: Choice;
  outcome: BlindOutcome;
  utilityBase: number;
  utilityTuned: number;
}

/** The blind evaluation's result: the score (skips not counted) and the rater's true utilities. */
export interface BlindResult extends BlindScore {
  meanUtilityBase: number;
  meanUtilityTuned: number;
  judgements: BlindJudgement[];
}

/** Shows each (prompt, seed) pair to the rater with a coin-flip side and scores tuned-vs-base outcomes. */
export function judgeBlind(rater: SimulatedRater, prompts: readonly string[], firstSeed: number, base: EvalImages, tuned: EvalImages, seed: number): BlindResult {
  const coin = mulberry32(seed);
  const judgements: BlindJudgement[] = [];
  prompts.forEach((prompt, p) => base[p].forEach((b, k) => {
    const t = tuned[p][k];
    const tunedSide = coin() < 0.5 ? 'left' : 'right';
    const choice = tunedSide === 'left' ? rater.rate(t, b, prompt) : rater.rate(b, t, prompt);
    judgements.push({ prompt, seed: firstSeed + k, tunedSide, choice, outcome: blindOutcome(choice, tunedSide), utilityBase: rater.utility(b, prompt), utilityTuned: rater.utility(t, prompt) });
  }));
  const mean = (f: (j: BlindJudgement) => number) => judgements.reduce((s, j) => s + f(j), 0) / Math.max(1, judgements.length);
  return { ...scoreBlind(judgements.map((j) => j.outcome)), meanUtilityBase: mean((j) => j.utilityBase), meanUtilityTuned: mean((j) => j.utilityTuned), judgements };
}
