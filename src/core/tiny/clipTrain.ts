/** Trains the tiny CLIP contrastively on the shapes world with our own autodiff and writes its Hub-layout folder. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atomicWriteFileSync } from '../fsutil';
import { buildClipTextEncoder, ClipTextConfig } from '../graphs/clipText';
import { buildClipVisionModel, type ClipVisionConfig } from '../graphs/clipVision';
import { writeClipFolder } from '../graphs/clipFolder';
import { ClipTokenizer } from '../diffusion/tokenizer';
import { GaussianRng } from '../diffusion/rng';
import { CLIP_MEAN, CLIP_STD, toPixelValues } from '../reward/onnxBackbone';
import { AdamW, clipGradNorm } from '../train/adamw';
import { mulberry32 } from '../random';
import { buildClipTrainingGraph, LOGIT_SCALE_INIT, LOGIT_SCALE_MAX, TINY_CLIP_VISION, tinyClipTextConfig } from './clipModel';
import { CLIP_SIZES, DEFAULT_CLIP_GROUPS, drawClipBatch, type ClipGroupKind, matchTargets, renderClipItem, toImageRGB } from './clipScenes';
import { captionWords } from './scenes';
import { learningRate, LossLog, TINY_SEQUENCE } from './train';
import { createGraphTrainer, GraphTrainer, withWeights } from './trainGraph';
import { buildVocab, BpeVocab, writeTokenizerFolder, writeTokenizerJson } from './vocab';

/** Settings of a run; the same settings and seed give the same data and initial weights. */
export interface TinyClipTrainOptions {
  out: string;
  steps: number;
  seed: number;
  /** Pairs per step: groups of 4 scenes sharing colours (a multiple of 4). */
  batch: number;
  lr: number;
  warmup?: number;
  /** AdamW weight decay of the weight matrices (biases, norms, embeddings and the logit scale take none). */
  weightDecay?: number;
  /** Learn CLIP's logit scale (default) or keep it at ln(1/0.07). */
  learnTemperature?: boolean;
  /** Tower sizes over the embedded model's (width 64, 3 vision layers, 32-wide embedding). */
  towers?: TinyClipTowers;
  /** The cycle of group kinds each batch is drawn from (default {@link DEFAULT_CLIP_GROUPS}, the embedded model's). */
  groups?: readonly ClipGroupKind[];
  threads?: number;
  log?: (line: string) => void;
}

/** Sizes of the tiny CLIP's towers: both towers' width (MLPs twice as wide), the vision tower's depth, the shared embedding's width. */
export interface TinyClipTowers {
  width?: number;
  visionLayers?: number;
  projection?: number;
}

// The towers' configs: the embedded model's, resized as told.
function towerConfigs(t: TinyClipTowers, text: ClipTextConfig): { vision: ClipVisionConfig; text: ClipTextConfig } {
  const width = t.width ?? TINY_CLIP_VISION.hidden_size, projection = t.projection ?? TINY_CLIP_VISION.projection_dim;
  if (width % TINY_CLIP_VISION.num_attention_heads !== 0) throw new Error(`tower width ${width} must be a multiple of ${TINY_CLIP_VISION.num_attention_heads} (attention heads)`);
  const sized = { hidden_size: width, intermediate_size: 2 * width, projection_dim: projection };
  return { vision: { ...TINY_CLIP_VISION, ...sized, num_hidden_layers: t.visionLayers ?? TINY_CLIP_VISION.num_hidden_layers }, text: { ...text, ...sized } };
}

/** What a run returns: the loss curve and the learned logit scale. */
export interface TinyClipTrainResult {
  losses: Array<[number, number]>;
  logitScale: number;
}

const SEQ = TINY_SEQUENCE;

/** Trains both towers for `o.steps` AdamW steps and writes `o.out` (layout: src/core/graphs/clipFolder.ts) plus training.json. */
export async function trainTinyClip(o: TinyClipTrainOptions): Promise<TinyClipTrainResult> {
  if (o.batch % 4 !== 0) throw new Error(`--batch ${o.batch} must be a multiple of 4 (groups of four scenes share their colours)`);
  const log = o.log ?? ((l: string) => console.log(l));
  const groups = o.groups ?? DEFAULT_CLIP_GROUPS;
  // 'blob' joins the vocabulary only with blob groups, so the embedded model's recipe keeps its tokenizer
  const vocab = buildVocab([...captionWords(), ...CLIP_SIZES, ...(groups.includes('blob') ? ['blob'] : [])]);
  const tokenizer = new ClipTokenizer({ vocab: vocab.vocab, merges: vocab.merges, maxLength: SEQ });
  const { vision: visionConfig, text: textConfig } = towerConfigs(o.towers ?? {}, tinyClipTextConfig(Object.keys(vocab.vocab).length, tokenizer.eosId, SEQ));
  const learn = o.learnTemperature ?? true;
  const { model, weights } = buildClipTrainingGraph(visionConfig, textConfig, o.seed, learn);
  const trainer = await createGraphTrainer(model, weights, { dims: { batch: o.batch, sequence: SEQ } }, o.threads);
  const matrices = new Set(weights.filter((k) => (model.graph.initializers.get(k)?.dims.length ?? 0) >= 2 && !k.includes('embedding')));
  const opt = new AdamW({ lr: o.lr, weightDecay: o.weightDecay ?? 0.1, noDecay: (k) => !matrices.has(k) });
  const rand = mulberry32(o.seed * 7919 + 29);
  const gauss = new GaussianRng(o.seed + 101);
  const lossLog = new LossLog(o.steps, log);
  try {
    for (let step = 1; step <= o.steps; step++) {
      const loss = await trainStep(trainer, tokenizer, rand, gauss, o.batch, groups);
      if (!Number.isFinite(loss.value)) throw new Error(`tiny CLIP training diverged at step ${step} (loss ${loss.value}); lower --lr`);
      clipGradNorm(loss.grads.values(), 1);
      const lr = learningRate(step, o.steps, o.warmup ?? 100, o.lr);
      (opt as { lr: number }).lr = lr;
      opt.update(trainer.params, loss.grads);
      const scale = trainer.params.get('logit_scale');
      if (scale) scale[0] = Math.min(scale[0], LOGIT_SCALE_MAX);
      lossLog.add(step, loss.value, lr);
    }
  } finally {
    await trainer.release();
  }
  const logitScale = trainer.params.get('logit_scale')?.[0] ?? LOGIT_SCALE_INIT;
  writeTinyClipFolder({ ...o, groups }, vocab, visionConfig, textConfig, trainer.params, logitScale, lossLog.losses);
  return { losses: lossLog.losses, logitScale };
}

// One contrastive step on a fresh batch: render, tokenize, soft targets, forward + backward.
async function trainStep(trainer: GraphTrainer, tok: ClipTokenizer, rand: () => number, gauss: GaussianRng, B: number, groups: readonly ClipGroupKind[]): Promise<{ value: number; grads: Map<string, Float32Array> }> {
  const items = drawClipBatch(rand, B / 4, 4, groups);
  const images = items.map((it) => toImageRGB(renderClipItem(it, rand, gauss)));
  const S = TINY_CLIP_VISION.image_size;
  const pixels = toPixelValues(images, { size: S, mean: CLIP_MEAN, std: CLIP_STD });
  const { imageToText, textToImage } = matchTargets(items);
  const { loss, grads } = await trainer.step(new Map([
    ['pixel_values', { dims: [B, 3, S, S], data: pixels }],
    ['input_ids', { dims: [B, SEQ], data: items.flatMap((it) => tok.encode(it.caption)) }],
    ['image_to_text', { dims: [B, B], data: imageToText }],
    ['text_to_image', { dims: [B, B], data: textToImage }],
  ]));
  return { value: loss, grads };
}

// The trained weights into the standalone towers, and the folder with its tokenizer and training.json.
function writeTinyClipFolder(o: TinyClipTrainOptions, vocab: BpeVocab, visionConfig: ClipVisionConfig, textConfig: ClipTextConfig, params: Map<string, Float32Array>, logitScale: number, losses: Array<[number, number]>): void {
  const pick = (prefixes: string[]) => new Map([...params].filter(([k]) => prefixes.some((p) => k.startsWith(p))));
  const vision = withWeights(buildClipVisionModel(visionConfig, { seed: o.seed }), pick(['vision_model.', 'visual_projection.']));
  const text = withWeights(buildClipTextEncoder(textConfig, { seed: o.seed, projectionDim: textConfig.projection_dim, inputIds: 'int64' }), pick(['text_model.', 'text_projection.']));
  const tokDir = mkdtempSync(join(tmpdir(), 'tiny-clip-tokenizer-'));
  try {
    writeTokenizerFolder(tokDir, vocab, SEQ);
    writeTokenizerJson(tokDir, vocab);
    writeClipFolder(o.out, {
      vision, text, visionConfig, textConfig, logitScale, tokenizerDir: tokDir, name: 'ddpo-studio/tiny-clip',
      preprocess: { size: visionConfig.image_size, mean: CLIP_MEAN, std: CLIP_STD },
    });
  } finally {
    rmSync(tokDir, { recursive: true, force: true });
  }
  atomicWriteFileSync(join(o.out, 'training.json'), JSON.stringify({
    steps: o.steps, seed: o.seed, batch: o.batch, lr: o.lr, weight_decay: o.weightDecay ?? 0.1, learn_temperature: o.learnTemperature ?? true,
    groups: o.groups, ...(o.towers ? { towers: o.towers } : {}), logit_scale: +logitScale.toFixed(5), loss_every_50_steps: losses,
  }) + '\n');
}
