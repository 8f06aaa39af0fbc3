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
import { AESTHETIC_HUB_REPO, AESTHETIC_REPO, aestheticScore, aestheticSearchDirs, findAestheticWeights, loadAestheticPredictor, missingAestheticWeights, type AestheticPredictor } from './aesthetic';
import type { OpenBackboneOptions } from './openBackbone';
import { isBuiltinBackbone } from './backboneRef';
import type { Backbone } from './backbone';
import { PRIOR_NAMES, type PriorName } from './priorNames';
import { cosine, type FeatureLayout } from './headInput';
import { STATS_FEATURE_DIM } from './features';
import { cachedModelDir, defaultModelCacheDir, downloadModel, isCompleteDownload } from '../models/hubDownload';
import { f32, toFloat32, type SafeTensor } from '../safetensors';

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

/**
 * Where the aesthetic predictor's weights are looked for (the experiment's `reward/priors/`, then `priors/` beside the
 * Hub model cache, then the cache's copy of the Hub repo) and how that repo is fetched when none are (as backbones are:
 * `cacheDir`, `offline`, `token`, `baseUrl`, progress).
 */
export type PriorLocation = { experimentDir?: string } & Pick<OpenBackboneOptions, 'cacheDir' | 'offline' | 'token' | 'baseUrl' | 'signal' | 'onProgress' | 'onLog'>;

/** Opens prior `name` for `backbone`, checking that the backbone gives what it reads; errors say what to change. */
export async function openPrior(name: PriorName, backbone: Backbone, where: PriorLocation = {}): Promise<RewardPrior> {
  const label = backbone.label ?? backbone.id;
  switch (name) {
    case 'aesthetic': {
      const p = loadAestheticPredictor(await aestheticWeights(where));
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

// The predictor's weights file: one put on this machine, else the Hub repo's, from the cache or downloaded into it.
async function aestheticWeights(where: PriorLocation): Promise<string> {
  const cacheDir = where.cacheDir ?? defaultModelCacheDir();
  const dirs = aestheticSearchDirs(where.experimentDir, cacheDir);
  const hubDir = cachedModelDir(cacheDir, AESTHETIC_HUB_REPO);
  const local = findAestheticWeights(isCompleteDownload(hubDir, AESTHETIC_REPO) ? [...dirs, hubDir] : dirs);
  if (local) return local;
  if (where.offline) throw missingAestheticWeights(dirs, 'none are on this machine and downloads are off (offline)');
  where.onLog?.(`downloading the aesthetic predictor's weights from ${AESTHETIC_HUB_REPO} into ${hubDir}`);
  try {
    await downloadModel({ repo: AESTHETIC_HUB_REPO, cacheDir, layout: AESTHETIC_REPO, token: where.token ?? process.env.HF_TOKEN, baseUrl: where.baseUrl, signal: where.signal, onProgress: where.onProgress });
  } catch (e) {
    if (where.signal?.aborted) throw e;
    throw missingAestheticWeights(dirs, `none are on this machine, and the Hub did not give them (${(e as Error).message})`);
  }
  const fetched = findAestheticWeights([hubDir]);
  if (!fetched) throw missingAestheticWeights(dirs, `the download of ${AESTHETIC_HUB_REPO} holds none`);
  return fetched;
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
