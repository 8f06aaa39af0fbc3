/**
 * Pretrained starting points: rewards that score images before anyone rated them. Each is a DDPO reward on its own
 * (`"reward": "aesthetic"` in ddpo.json) and the warm start of a personal head (see warmStart.ts).
 * - `aesthetic`: the LAION aesthetic predictor on CLIP ViT-L/14 image embeddings (aesthetic.ts).
 * - `clip_score`: prompt alignment, 100·max(cos(image, prompt), 0) of the backbone's embeddings: the scale of
 *   torchmetrics' CLIPScore (Hessel et al.'s CLIP-S is 2.5·max(cos, 0), the same ranking).
 * - `shape_taste`: the demo rater's taste (bigger, more centred, warmer subjects: 2√area − 2·distance from the centre
 *   + (red − blue)) read from the built-in shape features: a hand-made prior for the shapes world, where no
 *   pretrained model means anything.
 */
import { aestheticScore, aestheticSearchDirs, findAestheticWeights, loadAestheticPredictor, type AestheticPredictor } from './aesthetic';
import { isBuiltinBackbone } from './backboneRef';
import type { Backbone } from './backbone';
import { cosine, type FeatureLayout } from './headInput';
import { STATS_FEATURE_DIM } from './features';
import { defaultModelCacheDir } from '../models/hubDownload';
import { f32, toFloat32, type SafeTensor } from '../safetensors';

/** The names of the built-in priors. */
export const PRIOR_NAMES = ['aesthetic', 'clip_score', 'shape_taste'] as const;
/** One built-in prior's name. */
export type PriorName = (typeof PRIOR_NAMES)[number];

/** True for a built-in prior's name. */
export const isPriorName = (s: unknown): s is PriorName => typeof s === 'string' && (PRIOR_NAMES as readonly string[]).includes(s);

/** A reward over a backbone's embeddings that needs no ratings. */
export interface RewardPrior {
  readonly name: PriorName;
  /** True when it reads the prompt's text embedding. */
  readonly readsPrompt: boolean;
  /** The score of an image embedding (and its prompt's, for priors that read it). */
  score(image: Float32Array, prompt?: Float32Array): number;
  /** The tensors that rebuild it (saved with a warm-started head, so that the head needs no other file). */
  tensors(): Record<string, SafeTensor>;
}

// Where the built-in features put √area, the distance from the centre and red − blue of the subject (see statsFeatures).
const SQRT_AREA = 20, CENTRE_DISTANCE = 25, RED_MINUS_BLUE = 30;

/** Where the aesthetic predictor's weights are looked for. */
export interface PriorLocation {
  experimentDir?: string;
  /** The Hub model cache (default ~/.cache/ddpo-studio/models); its sibling `priors/` holds shared prior weights. */
  cacheDir?: string;
}

/** Opens prior `name` for `backbone`, checking that the backbone gives what it reads; errors say what to change. */
export function openPrior(name: PriorName, backbone: Backbone, where: PriorLocation = {}): RewardPrior {
  const label = backbone.label ?? backbone.id;
  switch (name) {
    case 'aesthetic': {
      const p = loadAestheticPredictor(findAestheticWeights(aestheticSearchDirs(where.experimentDir, where.cacheDir ?? defaultModelCacheDir())));
      if (backbone.dim !== p.w.length) {
        throw new Error(`the aesthetic predictor (${p.file}) reads CLIP ViT-L/14's ${p.w.length}-wide image embeddings, but the reward backbone ${label} gives ${backbone.dim}: ` +
          'set "rewardBackbone": { "id": "Xenova/clip-vit-large-patch14" } in experiment.json (or pass --backbone with a ViT-L/14 export)');
      }
      return aestheticPrior(p);
    }
    case 'clip_score':
      if (!backbone.text) throw new Error(`clip_score compares each image with its prompt, but the reward backbone ${label} has no text tower: choose a CLIP backbone with one (onnx/text_model.onnx and a tokenizer)`);
      return clipScorePrior;
    case 'shape_taste':
      if (!isBuiltinBackbone(backbone.id) || backbone.dim !== STATS_FEATURE_DIM) throw new Error(`shape_taste reads the built-in shape features, but the reward backbone is ${label}: use it with "rewardBackbone": { "id": "builtin:stats" }`);
      return shapeTastePrior;
  }
}

/** Rebuilds a prior saved with a head (its name and {@link RewardPrior.tensors}). */
export function priorFromTensors(name: string, tensors: Map<string, SafeTensor>, file: string): RewardPrior {
  if (name === 'clip_score') return clipScorePrior;
  if (name === 'shape_taste') return shapeTastePrior;
  if (name === 'aesthetic') {
    const w = tensors.get('prior.w'), b = tensors.get('prior.b');
    if (!w || !b) throw new Error(`${file} names the aesthetic prior but holds no prior.w/prior.b; train the reward model again`);
    return aestheticPrior({ w: toFloat32(w).slice(), b: toFloat32(b)[0], file });
  }
  throw new Error(`${file} names the prior "${name}", which this DDPO Studio does not know (it knows ${PRIOR_NAMES.join(', ')}): update it, or train the reward model again`);
}

/** The prior's score of a head input of `layout` (see headInput.ts: u, v, u⊙v, cos for prompt-aware heads). */
export function priorOfHeadInput(prior: RewardPrior, layout: FeatureLayout, x: Float32Array): number {
  if (layout === 'image') {
    if (prior.readsPrompt) throw new Error(`the ${prior.name} prior reads the prompt, but this head sees only the image`);
    return prior.score(x);
  }
  const d = (x.length - 1) / 3;
  return prior.score(x.subarray(0, d), x.subarray(d, 2 * d));
}

function aestheticPrior(p: AestheticPredictor): RewardPrior {
  return { name: 'aesthetic', readsPrompt: false, score: (image) => aestheticScore(p, image), tensors: () => ({ 'prior.w': f32([1, p.w.length], p.w), 'prior.b': f32([1], Float32Array.of(p.b)) }) };
}

const clipScorePrior: RewardPrior = {
  name: 'clip_score',
  readsPrompt: true,
  score: (image, prompt) => {
    if (!prompt) throw new Error('clip_score needs the prompt\'s text embedding with each image');
    return 100 * Math.max(cosine(image, prompt), 0);
  },
  tensors: () => ({}),
};

const shapeTastePrior: RewardPrior = {
  name: 'shape_taste',
  readsPrompt: false,
  score: (f) => 2 * f[SQRT_AREA] - 2 * f[CENTRE_DISTANCE] + f[RED_MINUS_BLUE],
  tensors: () => ({}),
};
