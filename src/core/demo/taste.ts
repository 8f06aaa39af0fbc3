/** The demo's simulated rater: a person who likes big shapes, which the base model draws only as often as small ones. */
import type { ImageRGB } from '../image/rgb';
import { SimulatedRater } from '../reward/sim';
import { measureImage } from '../tiny/measure';

/** Tastes the demo can simulate. */
export type DemoTaste = 'big' | 'warm';

/** What each rater wants, in words (printed and written to report.json). */
export const TASTE_DESCRIPTIONS: Record<DemoTaste, string> = {
  big: 'prefers big shapes: the larger the share of the picture the shape covers, the better',
  warm: 'prefers warm pictures: the more red and the less blue over the whole picture, the better',
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

/** The utility of a taste. */
export function tasteUtility(taste: DemoTaste): (img: ImageRGB) => number {
  return taste === 'warm' ? warmPictureUtility : bigShapeUtility;
}

/** Options of the demo rater. */
export interface DemoRaterOptions {
  taste: DemoTaste;
  /** Utilities of typical base-model images: they set how noisy the rater is on close pairs. */
  typicalUtilities: number[];
  seed: number;
  /** Share of decisive answers that follow the utility (Bradley-Terry noise on close pairs). */
  consistency?: number;
  tieRate?: number;
}

/** A Bradley-Terry rater with the given taste, 90% consistent and 5% ties by default. */
export function makeDemoRater(o: DemoRaterOptions): SimulatedRater {
  return new SimulatedRater({
    utility: tasteUtility(o.taste), consistency: o.consistency ?? 0.9, tieRate: o.tieRate ?? 0.05,
    typicalUtilities: o.typicalUtilities, seed: o.seed,
  });
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
