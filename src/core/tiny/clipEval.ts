/** Zero-shot retrieval of a CLIP on held-out shapes-world scenes: which of N captions matches an image. */
import { GaussianRng } from '../diffusion/rng';
import { mulberry32 } from '../random';
import type { Backbone } from '../reward/backbone';
import { cosine } from '../reward/headInput';
import { Augment, claimCaption, ClipClaim, clipItem, clipScene, CLIP_SIZES, renderClipItem, sizeClass, toImageRGB, TRAIN_AUGMENT } from './clipScenes';
import { COLOURS, SHAPES } from './scenes';

/** Accuracy of picking the true caption among candidates that differ in one attribute, and the chance level. */
export interface RetrievalScore {
  accuracy: number;
  n: number;
  chance: number;
}

/** Scores per test: `shape` (3 captions), `colour` and `background` (7 each), `size` (5), `caption` (8 captions of other scenes). */
export type RetrievalReport = Record<'shape' | 'colour' | 'background' | 'size' | 'caption', RetrievalScore>;

/** Options of {@link retrievalAccuracy}. */
export interface RetrievalOptions {
  scenes: number;
  /** Seeds the held-out scenes (training draws from other streams). */
  seed: number;
  augment?: Augment;
}

/**
 * Renders `scenes` random scenes and, for each, asks which caption the image is closest to (cosine) among its true
 * caption and the ones that change only its shape, only its colour, only its background, only its (clear) size, or
 * among the true caption and 7 captions of other scenes.
 */
export async function retrievalAccuracy(clip: Pick<Backbone, 'embed' | 'text'>, o: RetrievalOptions): Promise<RetrievalReport> {
  const text = clip.text;
  if (!text) throw new Error('retrieval needs a backbone with a text tower (onnx/text_model.onnx and a tokenizer)');
  const rand = mulberry32(o.seed), gauss = new GaussianRng(o.seed);
  const scenes = Array.from({ length: o.scenes }, () => {
    const colour = COLOURS[Math.floor(rand() * COLOURS.length)];
    const others = COLOURS.filter((c) => c !== colour);
    return clipScene(rand, SHAPES[Math.floor(rand() * SHAPES.length)], colour, others[Math.floor(rand() * others.length)]);
  });
  const images = await clip.embed(scenes.map((s) => toImageRGB(renderClipItem(clipItem(s, rand, 0), rand, gauss, o.augment ?? TRAIN_AUGMENT))));
  const claims = scenes.map((s): ClipClaim => ({ shape: s.shape, colour: s.colour, background: s.background }));
  const tests: Array<[keyof RetrievalReport, (i: number) => ClipClaim[] | null]> = [
    ['shape', (i) => SHAPES.map((shape) => ({ ...claims[i], shape }))],
    ['colour', (i) => COLOURS.filter((c) => c !== claims[i].background).map((colour) => ({ ...claims[i], colour }))],
    ['background', (i) => COLOURS.filter((c) => c !== claims[i].colour).map((background) => ({ ...claims[i], background }))],
    ['size', (i) => (sizeClass(scenes[i].radius) ? CLIP_SIZES.map((size) => ({ ...claims[i], size })) : null)],
    ['caption', (i) => Array.from({ length: 8 }, (_, k) => claims[(i + k) % claims.length])],
  ];
  const report = {} as RetrievalReport;
  for (const [name, candidatesOf] of tests) {
    let right = 0, n = 0, chance = 0;
    for (let i = 0; i < scenes.length; i++) {
      const cands = candidatesOf(i);
      if (!cands) continue;
      const truth = name === 'size' ? claimCaption({ ...claims[i], size: sizeClass(scenes[i].radius) }) : claimCaption(claims[i]);
      const texts = await text.embed(cands.map(claimCaption));
      const sims = texts.map((t) => cosine(images[i], t));
      const best = cands.map(claimCaption)[sims.indexOf(Math.max(...sims))];
      n++; chance += 1 / new Set(cands.map(claimCaption)).size;
      if (best === truth) right++;
    }
    report[name] = { accuracy: right / n, n, chance: chance / n };
  }
  return report;
}
