/**
 * The demo's simulated raters: a person who likes big shapes (which the base model draws only as often as small ones),
 * warm pictures, or big shapes only while the shape is the one the prompt names.
 */
import type { ImageRGB } from '../image/rgb';
import { SimulatedRater, temperatureForGaps } from '../reward/sim';
import { fidelityUtility } from '../tiny/fidelity';
import { measureImage } from '../tiny/measure';

/** Tastes the demo can simulate. */
export type DemoTaste = 'big' | 'warm' | 'fidelity';

/** Every taste, for the CLI's choices. */
export const DEMO_TASTES: readonly DemoTaste[] = ['big', 'warm', 'fidelity'];

/** What each rater wants, in words (printed and written to report.json). */
export const TASTE_DESCRIPTIONS: Record<DemoTaste, string> = {
  big: 'prefers big shapes: the larger the share of the picture the shape covers, the better',
  warm: 'prefers warm pictures: the more red and the less blue over the whole picture, the better',
  fidelity: 'prefers big shapes, but only while the shape is the one the prompt names: a square that turns into a blob loses to any square',
};

/** How each rater signs its ratings in ratings.jsonl. */
export const RATER_NAMES: Record<DemoTaste, string> = {
  big: 'simulated: big shapes', warm: 'simulated: warm pictures', fidelity: 'simulated: big shapes of the prompt\'s shape',
};

/**
 * The rater's true utility: the shape's share of the image (0..1). Prompts never name a size, so the base model
 * draws big and small shapes alike and has no reason to favour either; only the ratings carry the preference.
 */
export function bigShapeUtility(img: ImageRGB): number {
  return measureImage(img).area;
}

/** The rater's true utility for a warm taste: mean of (R - B) over all pixels, in [-1, 1]. */
export function warmPictureUtility(img: ImageRGB): number {
  let s = 0;
  for (let i = 0; i < img.data.length; i += 3) s += img.data[i] - img.data[i + 2];
  return s / (img.data.length / 3) / 255;
}

/** The utility of a taste; `prompt` is what the image was made for (only the fidelity taste reads it). */
export function tasteUtility(taste: DemoTaste): (img: ImageRGB, prompt?: string) => number {
  if (taste === 'fidelity') return (img, prompt) => fidelityUtility(img, prompt ?? '');
  return taste === 'warm' ? warmPictureUtility : bigShapeUtility;
}

/** Whether a taste depends on the prompt (its rater is then calibrated on same-prompt pairs, as it is shown). */
export function tasteReadsPrompt(taste: DemoTaste): boolean {
  return taste === 'fidelity';
}

/** Options of the demo rater. */
export interface DemoRaterOptions {
  taste: DemoTaste;
  /** Utilities of typical base-model images: they set how noisy the rater is on close pairs. */
  typicalUtilities: number[];
  /** The prompt of each typical image: a prompt-dependent taste sets its noise on same-prompt pairs only. */
  typicalPrompts?: readonly string[];
  seed: number;
  /** Share of decisive answers that follow the utility (Bradley-Terry noise on close pairs). */
  consistency?: number;
  tieRate?: number;
}

/** A Bradley-Terry rater with the given taste, 90% consistent and 5% ties by default. */
export function makeDemoRater(o: DemoRaterOptions): SimulatedRater {
  const consistency = o.consistency ?? 0.9;
  // across prompts the share of misdrawn shapes differs, which would make cross-prompt pairs look easier than those rated
  const temperature = tasteReadsPrompt(o.taste) && o.typicalPrompts ? temperatureForGaps(samePromptGaps(o.typicalUtilities, o.typicalPrompts), consistency) : undefined;
  return new SimulatedRater({
    utility: tasteUtility(o.taste), consistency, tieRate: o.tieRate ?? 0.05,
    typicalUtilities: o.typicalUtilities, temperature, seed: o.seed,
  });
}

function samePromptGaps(utils: number[], prompts: readonly string[]): number[] {
  const gaps: number[] = [];
  for (let i = 0; i < utils.length; i++) for (let j = i + 1; j < utils.length; j++) if (prompts[i] === prompts[j]) gaps.push(Math.abs(utils[i] - utils[j]));
  return gaps;
}

/** Training prompts: the model's vocabulary (media/tiny-model/README.md) without size words. */
export const DEMO_TRAIN_PROMPTS: readonly string[] = Object.freeze([
  'a red circle on a blue background', 'a yellow square on a black background', 'a green triangle on a white background',
  'a purple circle on an orange background', 'a blue square on a yellow background', 'an orange triangle on a purple background',
]);

/** Held-out prompts for the blind evaluation: colour/shape/background combinations never trained on. */
export const DEMO_EVAL_PROMPTS: readonly string[] = Object.freeze([
  'a blue circle on a white background', 'a red square on a green background', 'a yellow triangle on a blue background',
  'a white circle on a purple background', 'a green square on an orange background', 'a purple triangle on a yellow background',
  'an orange circle on a black background', 'a black square on a white background',
]);

/** Training prompts of the fidelity taste: shapes the base model often draws as another shape (its squares come out rounded). */
export const FIDELITY_TRAIN_PROMPTS: readonly string[] = Object.freeze([
  'a yellow square on a black background', 'a blue square on a yellow background', 'a white square on a red background',
  'an orange square on a blue background', 'a white circle on a green background', 'a purple triangle on a white background',
]);

/** Held-out prompts of the fidelity taste's blind evaluation: combinations never trained on, squares first. */
export const FIDELITY_EVAL_PROMPTS: readonly string[] = Object.freeze([
  'a red square on a green background', 'a green square on an orange background', 'a black square on a white background',
  'a purple square on a yellow background', 'a white circle on a purple background', 'a blue circle on a white background',
  'a yellow triangle on a blue background', 'an orange circle on a black background',
]);
