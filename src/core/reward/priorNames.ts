/**
 * The built-in priors by name: which there are, what each starts a personal head from, and which fit a reward backbone.
 * It loads no model (the extension host reads it to offer the choice); opening a prior is priors.ts.
 */
import { AESTHETIC_WIDTHS } from './aesthetic';
import { isBuiltinBackbone, localBackboneDir } from './backboneRef';
import type { RewardBackboneRef } from '../experiment/schema';
import { backboneFolderTraits, inspectBackboneFolder } from '../models/backboneFolder';

/** The names of the built-in priors. */
export const PRIOR_NAMES = ['aesthetic', 'clip_score', 'shape_taste'] as const;
/** One built-in prior's name. */
export type PriorName = (typeof PRIOR_NAMES)[number];

/** True for a built-in prior's name. */
export const isPriorName = (s: unknown): s is PriorName => typeof s === 'string' && (PRIOR_NAMES as readonly string[]).includes(s);

/** What decides which priors fit a reward backbone: the built-in features, a text tower, the image embedding's width. */
export interface BackboneTraits {
  builtin: boolean;
  textTower: boolean;
  /** The width of the image embedding, when the folder's config.json states it (`projection_dim`). */
  embeddingWidth?: number;
}

/**
 * The priors a personal head on this backbone can start from, the most useful first: `shape_taste` on the built-in
 * features; on a CLIP, `aesthetic` where the image embedding is ViT-L/14's width (what the predictor reads) and
 * `clip_score` where a text tower gives the prompt's embedding.
 */
export function fittingPriors(t: BackboneTraits): PriorName[] {
  if (t.builtin) return ['shape_taste'];
  return [...(t.embeddingWidth === AESTHETIC_WIDTHS[0] ? ['aesthetic' as const] : []), ...(t.textTower ? ['clip_score' as const] : [])];
}

/**
 * What decides which priors fit a backbone already on this machine (the built-in features, a shipped one, or one with
 * a folder `path`), read from its files without opening a session; see fittingPriors.
 */
export function localBackboneTraits(ref: RewardBackboneRef, baseDir = '.'): BackboneTraits {
  if (isBuiltinBackbone(ref.id)) return { builtin: true, textTower: false };
  const dir = localBackboneDir(ref, baseDir);
  if (!dir) throw new Error(`reward backbone ${ref.id} is not on this machine yet: download it first`);
  return { builtin: false, ...backboneFolderTraits(inspectBackboneFolder(dir)) };
}

/** What each prior starts a head from, in a person's words (New Experiment's choice). */
export const PRIOR_DESCRIPTIONS: Record<PriorName, string> = {
  aesthetic: 'the LAION aesthetic predictor (the DDPO paper\'s reward): how beautiful people rated similar images',
  clip_score: 'prompt alignment (CLIP score): how well each image shows what its prompt asks for',
  shape_taste: 'a hand-made taste for the shapes world: bigger, more centred, warmer shapes',
};
