/** A reward model as a scorer of (image, prompt) pairs: a head on its backbone's embeddings, as DDPO's learned reward uses it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EmbeddingCache, type Backbone } from './backbone';
import { describeBackboneRef, isBuiltinBackbone, rewardBackboneOf } from './backboneRef';
import { openBackbone, type OpenBackboneOptions } from './openBackbone';
import type { RewardHead } from './head';
import { headInput, headInputDim, type FeatureLayout } from './headInput';
import { loadRewardModel, type LoadedRewardHead } from './model';
import type { RewardPrior } from './priors';
import { readExperiment } from '../experiment/store';
import { BUILTIN_BACKBONE_ID, EXPERIMENT_FILE, type Experiment, type RewardBackboneRef } from '../experiment/schema';
import type { ImageRGB } from '../image/rgb';

/** Scores images with the prompts they were made for; `release` frees the backbone's sessions. */
export interface RewardScorer {
  readonly backbone: Backbone;
  readonly head: RewardHead;
  readonly layout: FeatureLayout;
  score(images: ImageRGB[], prompts: string[]): Promise<number[]>;
  release(): Promise<void>;
}

/** The prompts' embeddings a head of `layout` reads (none for an image-only head), from `cache` or computed once per prompt. */
export async function promptEmbeddings(backbone: Backbone, layout: FeatureLayout, prompts: string[], cache: EmbeddingCache): Promise<Float32Array[]> {
  if (layout === 'image') return [];
  if (!backbone.text) throw new Error(`the reward head reads prompts, but the backbone ${backbone.label ?? backbone.id} has no text tower`);
  return cache.embedPrompts(backbone.text, prompts);
}

/** The head inputs of images and the prompts they were made for. */
export async function embedForHead(backbone: Backbone, layout: FeatureLayout, images: ImageRGB[], prompts: string[], cache: EmbeddingCache): Promise<Float32Array[]> {
  const texts = await promptEmbeddings(backbone, layout, prompts, cache);
  return (await backbone.embed(images)).map((e, i) => headInput(layout, e, texts[i]));
}

/** A scorer from a head and the backbone it was trained on (prompt embeddings kept in memory for its lifetime). */
export function rewardScorer(head: RewardHead, backbone: Backbone, layout: FeatureLayout): RewardScorer {
  const want = headInputDim(layout, backbone.dim);
  if (want !== head.inputDim) throw new Error(`the reward head reads ${head.inputDim} features, but backbone ${backbone.label ?? backbone.id} gives ${want}; train the reward model again`);
  const prompts = new EmbeddingCache(null);
  return {
    backbone, head, layout,
    score: async (images, ps) => (await embedForHead(backbone, layout, images, ps, prompts)).map((x) => head.score(x)),
    release: async () => { await backbone.dispose?.(); },
  };
}

/** A built-in prior as a scorer: the backbone's image embeddings, and its prompt embeddings where the prior reads them. */
export function priorScorer(prior: RewardPrior, backbone: Backbone): Pick<RewardScorer, 'backbone' | 'score' | 'release'> {
  const prompts = new EmbeddingCache(null);
  return {
    backbone,
    score: async (images, ps) => {
      const texts = prior.readsPrompt ? await promptEmbeddings(backbone, 'image-prompt-v1', ps, prompts) : [];
      return (await backbone.embed(images)).map((e, i) => prior.score(e, texts[i]));
    },
    release: async () => { await backbone.dispose?.(); },
  };
}

/**
 * Opens an experiment's saved reward model on the backbone it was trained on: the one the head recorded (found where
 * experiment.json now says when its folder moved), else (heads
 * saved before they recorded it) the built-in features they name or the folder experiment.json names; its id must be
 * the head's. `onLog` hears when the experiment now names another backbone than the head was trained on.
 */
export async function openRewardScorer(experimentDir: string, o: OpenBackboneOptions = {}): Promise<RewardScorer> {
  const saved = loadRewardModel(experimentDir);
  const exp = await readExperiment(experimentDir).catch(() => undefined); // a bare folder of ratings: the head's own record decides
  const ref = trainedOn(saved, exp, experimentDir);
  const backbone = await openBackbone(ref, { ...o, baseDir: experimentDir });
  if (saved.backbone !== 'unknown' && backbone.id !== saved.backbone) {
    await backbone.dispose?.();
    throw new Error(`the reward model in ${experimentDir} was trained on backbone ${saved.backbone}, but ${describeBackboneRef(ref)} opens as ${backbone.id} (other weights or another image preprocessing); train the reward model again`);
  }
  const named = exp && rewardBackboneOf(exp);
  if (named && describeBackboneRef(named) !== describeBackboneRef(ref)) {
    o.onLog?.(`the reward model was trained on ${describeBackboneRef(ref)}, the experiment names ${describeBackboneRef(named)}: it scores with the one it was trained on until it is trained again`);
  }
  try {
    return rewardScorer(saved.head, backbone, saved.features);
  } catch (e) {
    await backbone.dispose?.();
    throw e;
  }
}

// Where the backbone a saved head was trained on is opened from.
function trainedOn(saved: LoadedRewardHead, exp: Experiment | undefined, dir: string): RewardBackboneRef {
  const src = saved.backboneSource;
  if (src) {
    // the folder moved since training and experiment.json says where it is now: open it there (its weights are checked against the head's)
    const named = exp && rewardBackboneOf(exp);
    if (src.path && !fs.existsSync(path.resolve(dir, src.path)) && named?.id === src.id && named.path) return named;
    return src;
  }
  // heads from before the source was recorded: the built-in features by id (`unknown` in the oldest), else the experiment's folder
  if (saved.backbone === 'unknown' || isBuiltinBackbone(saved.backbone)) return { id: saved.backbone === 'unknown' ? BUILTIN_BACKBONE_ID : saved.backbone };
  if (exp?.rewardBackbone) return exp.rewardBackbone;
  throw new Error(`the reward model in ${dir} was trained on the ONNX encoder ${saved.backbone}, whose folder it does not record: ` +
    `set "rewardBackbone": { "id": "<name>", "path": "<that encoder's folder>" } in ${dir}/${EXPERIMENT_FILE}, or train the reward model again`);
}
