/** Phases 1 and 2 of the demo: base-model samples per prompt, then simulated ratings of same-prompt pairs. */
import type { Policy } from '../ddpo/types';
import { schedulePairs, type SampleRef } from '../reward/schedule';
import type { SimulatedRater } from '../reward/sim';
import { PreferenceStore, readRatings } from '../reward/store';
import type { ImageRGB } from '../image/rgb';
import { planPair, writePair, type PairImage } from '../studio/pairs';

/** How images are sampled everywhere in the demo (the same settings DDPO trains with). */
export interface SampleSettings {
  steps: number;
  guidance: number;
  eta: number;
}

/** Generated images with their experiment-relative paths. */
export interface GeneratedSamples {
  refs: SampleRef[];
  images: ImageRGB[];
}

/**
 * Samples `perPrompt` images of each prompt in one batch (seeds seed + 1000·p + k) and stores seeds k and k+1 as one
 * rating pair folder (`samples/<pairId>/{a,b}.png` and their latents, the studio's layout), so the studio lists the
 * demo's pairs and either algorithm can train on them.
 */
export async function generateSamples(policy: Pick<Policy, 'sample'>, dir: string, prompts: readonly string[], perPrompt: number, s: SampleSettings & { seed: number; signal?: AbortSignal; onImages?: (done: number, total: number) => void }): Promise<GeneratedSamples> {
  if (perPrompt % 2 !== 0) throw new Error(`images per prompt must be even (they are stored as pairs), got ${perPrompt}`);
  const out: GeneratedSamples = { refs: [], images: [] };
  const total = prompts.length * perPrompt;
  for (const [p, prompt] of prompts.entries()) {
    s.signal?.throwIfAborted();
    const seed0 = s.seed + 1000 * p;
    const r = await policy.sample({ prompts: new Array(perPrompt).fill(prompt), negativePrompt: '', seed: seed0, numSteps: s.steps, eta: s.eta, guidanceScale: s.guidance, signal: s.signal });
    const stored = (k: number): PairImage => ({
      image: { ...r.images[k], channels: 3 }, metadata: { prompt, seed: String(seed0 + k), steps: String(s.steps), guidance: String(s.guidance), eta: String(s.eta), software: 'DDPO Studio demo' },
      // the latent the image was decoded from, for Diffusion-DPO on a model without a VAE encoder
      ...(r.latentShape ? { latent: { shape: r.latentShape, data: r.latents[k].slice(r.latents[k].length - r.latentShape.reduce((a, b) => a * b, 1)) } } : {}),
    });
    for (let k = 0; k < perPrompt; k += 2) {
      const pair = await writePair(dir, planPair(prompt, seed0 + k), [stored(k), stored(k + 1)]);
      out.refs.push({ path: pair.a, prompt, seed: seed0 + k }, { path: pair.b, prompt, seed: seed0 + k + 1 });
      out.images.push(r.images[k], r.images[k + 1]);
    }
    s.onImages?.(out.images.length, total);
  }
  return out;
}

/** What the simulated rater answered. */
export interface RatingSummary {
  ratings: number;
  left: number;
  right: number;
  ties: number;
  repeats: number;
}

/**
 * Has `rater` rate `pairs` same-prompt pairs of `samples` (10% of them side-swapped repeats of earlier decisive
 * ratings, which may be of `earlier` samples: a later round's) into `<dir>/ratings.jsonl`.
 */
export function rateSamples(dir: string, samples: GeneratedSamples, rater: SimulatedRater, pairs: number, seed: number, onRated?: (done: number, total: number) => void, raterName = 'simulated: big shapes', earlier: GeneratedSamples[] = []): RatingSummary {
  const utility = new Map([samples, ...earlier].flatMap((s) => s.refs.map((r, i) => [r.path, rater.utility(s.images[i], r.prompt)] as const)));
  // a repeat of a pair whose images were not given would be rated on nothing: say so rather than answer at random
  const utilityOf = (p: string) => {
    const u = utility.get(p);
    if (u === undefined) throw new Error(`${p} is rated again, but it is not among the samples given (pass the earlier rounds' samples)`);
    return u;
  };
  const sum: RatingSummary = { ratings: 0, left: 0, right: 0, ties: 0, repeats: 0 };
  const store = PreferenceStore.open(dir);
  try {
    // Rounds of 20, as a person rates a queue: later rounds can repeat earlier decisive pairs with sides swapped.
    for (let round = 0; sum.ratings < pairs && round < 1000; round++) {
      const queue = schedulePairs(samples.refs, readRatings(dir).ratings, { count: Math.min(20, pairs - sum.ratings), seed: seed + round });
      if (queue.length === 0) break;
      for (const pr of queue) {
        const choice = rater.rateUtilities(utilityOf(pr.left), utilityOf(pr.right));
        store.append({ pairId: pr.pairId, prompt: pr.prompt, left: pr.left, right: pr.right, choice, rater: raterName, sideOrder: pr.sideOrder, repeatOf: pr.repeatOf });
        sum.ratings++;
        if (choice === 'left') sum.left++; else if (choice === 'right') sum.right++; else if (choice === 'tie') sum.ties++;
        if (pr.repeatOf) sum.repeats++;
      }
      onRated?.(sum.ratings, pairs);
    }
  } finally {
    store.close();
  }
  if (sum.ratings < pairs) throw new Error(`only ${sum.ratings} distinct pairs could be formed from ${samples.refs.length} samples; lower --pairs or raise the images per prompt`);
  return sum;
}
