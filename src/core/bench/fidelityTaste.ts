/**
 * The fidelity taste on the demo's loop: base-model samples of shape prompts, rated in same-prompt pairs by a simulated
 * person who prefers bigger shapes only while the shape is the one the prompt names (a geometric test decides, never a
 * learned model), then a Bradley–Terry reward head per backbone on the same ratings, scored on held-out pairs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDdpoConfig } from '../ddpo/config';
import { createOnnxPolicy } from '../ddpo/onnxPolicy';
import type { Policy } from '../ddpo/types';
import { generateSamples, rateSamples, type GeneratedSamples } from '../demo/pairs';
import { demoDdpoSettings, fullDemoOptions } from '../demo/settings';
import type { ImageRGB } from '../image/rgb';
import { mulberry32, shuffled } from '../random';
import { clipRewardFeatures, openClipEncoders, type ClipEncoders } from '../reward/clipEncoders';
import { isHeldOut } from '../reward/experiment';
import { statsFeatures } from '../reward/features';
import type { PairExample } from '../reward/head';
import { pairMetrics } from '../reward/metrics';
import { SimulatedRater, temperatureForGaps } from '../reward/sim';
import { readRatings } from '../reward/store';
import { fitHeadUsingAll } from '../reward/trainer';
import type { Rating } from '../reward/types';
import { fidelityUtility, fitShape, promptShape } from '../tiny/fidelity';

/**
 * Prompts for the fidelity taste: shapes the base model often draws as another (its squares come out rounded about
 * half the time, its white circles squarish), so the rated pairs hold the cases the taste is about. The demo's own
 * prompts hold few: the base model rarely misdraws their circles and triangles.
 */
export const FIDELITY_PROMPTS: readonly string[] = Object.freeze([
  'a yellow square on a black background', 'a blue square on a yellow background', 'a red square on a green background',
  'a green square on an orange background', 'a black square on a white background', 'a white circle on a purple background',
]);

/** What {@link runFidelityBench} is told. */
export interface FidelityBenchOptions {
  /** The diffusion model folder (the demo's embedded tiny model). */
  modelDir: string;
  /** The CLIP folder (onnx/vision_model.onnx, onnx/text_model.onnx, tokenizer, preprocessor_config.json). */
  clipDir: string;
  prompts: readonly string[];
  imagesPerPrompt: number;
  pairs: number;
  seeds: number[];
  /** L1 penalty of both heads (the demo's rewardL1). */
  l1: number;
  threads?: number;
  log?: (line: string) => void;
}

/** Held-out accuracy of one backbone's head. */
export interface BackboneScore {
  accuracy: number;
  decisive: number;
}

/** One seed's ratings and both heads' scores. */
export interface FidelitySeedResult {
  seed: number;
  /** Per prompt: the share of its base images whose shape the geometric test finds to be another than the prompt's. */
  wrongShape: Record<string, number>;
  ratings: number;
  /** Share of rated comparisons with one right-shape and one wrong-shape image (the ones only the prompt can decide). */
  mixedShare: number;
  heldOut: number;
  builtin: BackboneScore;
  clip: BackboneScore;
}

/** Generates, rates and fits for every seed; the policy and CLIP open once. */
export async function runFidelityBench(o: FidelityBenchOptions): Promise<FidelitySeedResult[]> {
  const demo = { ...fullDemoOptions(os.tmpdir()), threads: o.threads };
  const { config } = parseDdpoConfig(demoDdpoSettings(demo), 'demo ddpo.json');
  const policy = await createOnnxPolicy(o.modelDir, config, { threads: o.threads });
  const clip = await openClipEncoders(o.clipDir, { threads: o.threads });
  const results: FidelitySeedResult[] = [];
  try {
    for (const seed of o.seeds) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fidelity-bench-'));
      try {
        const sampling = { steps: demo.steps, guidance: demo.guidance, eta: config.sample_eta, seed };
        results.push(await benchSeed(o, policy, clip, dir, seed, await generateSamples(policy, dir, o.prompts, o.imagesPerPrompt, sampling)));
        const r = results[results.length - 1];
        o.log?.(`seed ${seed}: ${r.ratings} ratings (${(r.mixedShare * 100).toFixed(0)}% right vs wrong shape), held-out ${r.heldOut}: built-in ${(r.builtin.accuracy * 100).toFixed(1)}%, tiny CLIP ${(r.clip.accuracy * 100).toFixed(1)}%`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await clip.release();
    await policy.release?.();
  }
  return results;
}

// Rates one seed's samples and fits both heads on the same ratings.
async function benchSeed(o: FidelityBenchOptions, policy: Policy, clip: ClipEncoders, dir: string, seed: number, samples: GeneratedSamples): Promise<FidelitySeedResult> {
  const promptOf = new Map<ImageRGB, string>(samples.images.map((img, i) => [img, samples.refs[i].prompt]));
  const utility = (img: ImageRGB) => fidelityUtility(img, promptOf.get(img)!);
  const utils = samples.images.map(utility);
  // the demo's rater, 90% consistent (Bradley-Terry noise) and 5% ties, its noise set on the pairs it is shown: images of
  // one prompt (across prompts the share of misdrawn shapes differs, which would make those pairs look easier)
  const gaps: number[] = [];
  utils.forEach((u, i) => utils.forEach((v, j) => { if (j > i && samples.refs[i].prompt === samples.refs[j].prompt) gaps.push(Math.abs(u - v)); }));
  const rater = new SimulatedRater({ utility, consistency: 0.9, tieRate: 0.05, temperature: temperatureForGaps(gaps, 0.9), seed: seed + 1 });
  rateSamples(dir, samples, rater, o.pairs, seed + 2);
  const ratings = readRatings(dir).ratings.filter((r) => r.choice !== 'skip');
  const index = new Map(samples.refs.map((r, i) => [r.path, i]));
  const right = samples.images.map((img, i) => fitShape(img)?.shape === promptShape(samples.refs[i].prompt));
  const clipFeatures = await embedWithPrompts(clip, samples);
  const builtinFeatures = samples.images.map((img) => statsFeatures(img));
  const score = (feats: Float32Array[]) => fitAndScore(ratings.map((r) => example(r, feats, index)), seed, o.l1);
  const wrongShape: Record<string, number> = {};
  for (const p of o.prompts) {
    const mine = samples.refs.map((r, i) => (r.prompt === p ? i : -1)).filter((i) => i >= 0);
    wrongShape[p] = mine.filter((i) => !right[i]).length / mine.length;
  }
  const mixed = ratings.filter((r) => right[index.get(r.left)!] !== right[index.get(r.right)!]).length;
  const builtin = await score(builtinFeatures), clipScore = await score(clipFeatures);
  return { seed, wrongShape, ratings: ratings.length, mixedShare: mixed / ratings.length, heldOut: builtin.n, builtin: builtin.score, clip: clipScore.score };
}

// Image embedding, the prompt's text embedding and their cosine for every sample.
async function embedWithPrompts(clip: ClipEncoders, samples: GeneratedSamples): Promise<Float32Array[]> {
  const images = await clip.embedImages(samples.images);
  const prompts = [...new Set(samples.refs.map((r) => r.prompt))];
  const texts = new Map((await clip.embedTexts(prompts)).map((t, i) => [prompts[i], t]));
  return images.map((img, i) => clipRewardFeatures(img, texts.get(samples.refs[i].prompt)!));
}

function example(r: Rating, feats: Float32Array[], index: Map<string, number>): PairExample & { rating: Rating } {
  return { left: feats[index.get(r.left)!], right: feats[index.get(r.right)!], y: r.choice === 'left' ? 1 : r.choice === 'right' ? 0 : 0.5, rating: r };
}

// As the product's reward card does: 20% of pairs held out by pair id, 15% of the rest for early stopping, then refit.
async function fitAndScore(examples: Array<PairExample & { rating: Rating }>, seed: number, l1: number): Promise<{ n: number; score: BackboneScore }> {
  const heldOut = examples.filter((e) => isHeldOut(e.rating.pairId, 0.2));
  const train = shuffled(examples.filter((e) => !isHeldOut(e.rating.pairId, 0.2)), mulberry32(seed));
  const nVal = train.length >= 12 ? Math.max(3, Math.round(train.length * 0.15)) : 0;
  const { head } = await fitHeadUsingAll(train.slice(nVal), train.slice(0, nVal), { seed, l1 });
  const m = pairMetrics(head, heldOut);
  return { n: heldOut.length, score: { accuracy: m.accuracy, decisive: m.decisive } };
}
