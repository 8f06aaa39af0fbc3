/**
 * The LAION aesthetic predictor (improved-aesthetic-predictor, the reward of the DDPO paper and of TRL's DDPO example):
 * CLIP ViT-L/14's image embedding, L2-normalised, into an MLP 768→1024→128→64→16→1 whose layers are
 * `layers.{0,2,4,6,7}` (dropout between them, no activation). Its published weights are a PyTorch state dict
 * (`sac+logos+ava1-l14-linearMSE.pth`, or `aesthetic-model.pth` in the Hub repo trl-lib/ddpo-aesthetic-predictor),
 * read here through the tensor-only loader, or the same tensors as safetensors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { toFloat32, type SafeTensor } from '../safetensors';
import { readWeightsFile } from '../torchLoad';
import type { RepoLayout } from '../models/hubDownload';

/** The linear layers of the predictor, in order, as their state-dict names index them. */
export const AESTHETIC_LAYERS = [0, 2, 4, 6, 7] as const;

/** Widths from the image embedding to the score. */
export const AESTHETIC_WIDTHS = [768, 1024, 128, 64, 16, 1] as const;

/** File names the predictor's weights are looked for under, in order. */
export const AESTHETIC_FILE_NAMES = ['aesthetic.safetensors', 'sac+logos+ava1-l14-linearMSE.pth', 'aesthetic-model.pth'] as const;

/** The Hub repo the predictor's weights are fetched from when none are on this machine (TRL's DDPO example reads them there). */
export const AESTHETIC_HUB_REPO = 'trl-lib/ddpo-aesthetic-predictor';

/** What a download of {@link AESTHETIC_HUB_REPO} takes: the predictor's weights file, nothing else. */
export const AESTHETIC_REPO: RepoLayout = {
  select: (paths) => paths.filter((p) => (AESTHETIC_FILE_NAMES as readonly string[]).includes(p)),
  problem: (wanted, repoAt) => (wanted.length ? undefined : `${repoAt} holds none of ${AESTHETIC_FILE_NAMES.join(', ')}: it is not the aesthetic predictor's repo`),
};

/**
 * The predictor with its layers multiplied out: without activations (dropout only acts in training) the MLP is the
 * affine map score = w·û + b of the normalised embedding û, computed here once in float64.
 */
export interface AestheticPredictor {
  readonly w: Float32Array;
  readonly b: number;
  /** The file it was read from. */
  readonly file: string;
}

/** The aesthetic score of one image embedding (normalised here, as the predictor was trained on unit embeddings). */
export function aestheticScore(p: AestheticPredictor, embedding: Float32Array): number {
  if (embedding.length !== p.w.length) throw new Error(`the aesthetic predictor reads ${p.w.length}-wide CLIP ViT-L/14 image embeddings, got ${embedding.length}`);
  let n = 0, s = 0;
  for (let i = 0; i < embedding.length; i++) { n += embedding[i] * embedding[i]; s += p.w[i] * embedding[i]; }
  return n > 0 ? s / Math.sqrt(n) + p.b : p.b;
}

/** Reads the predictor from a state dict (.pth/.pt or .safetensors); names may carry a prefix (`mlp.layers.0.weight`). */
export function loadAestheticPredictor(file: string): AestheticPredictor {
  const { tensors } = readWeightsFile(file);
  const prefix = [...tensors.keys()].find((k) => k.endsWith('layers.0.weight'))?.slice(0, -'layers.0.weight'.length);
  if (prefix === undefined) throw new Error(`${file} has no tensor "layers.0.weight": it is not the LAION aesthetic predictor's state dict (expected ${expectedNames()})`);
  const layers = AESTHETIC_LAYERS.map((idx, k) => {
    const [inW, outW] = [AESTHETIC_WIDTHS[k], AESTHETIC_WIDTHS[k + 1]];
    return { w: tensorOf(file, tensors, `${prefix}layers.${idx}.weight`, [outW, inW]), b: tensorOf(file, tensors, `${prefix}layers.${idx}.bias`, [outW]), inW, outW };
  });
  // fold from the output back: v = W7ᵀ, then v ← Wᵀv layer by layer; b accumulates each bias through the layers after it
  let v = Float64Array.from(layers[layers.length - 1].w);
  let b = layers[layers.length - 1].b[0];
  for (let k = layers.length - 2; k >= 0; k--) {
    const { w, b: bias, inW, outW } = layers[k];
    for (let o = 0; o < outW; o++) b += v[o] * bias[o];
    const next = new Float64Array(inW);
    for (let o = 0; o < outW; o++) for (let i = 0; i < inW; i++) next[i] += v[o] * w[o * inW + i];
    v = next;
  }
  return { w: Float32Array.from(v), b, file };
}

/** The folders an experiment's aesthetic weights are looked for in: its own `reward/priors/`, then the shared `priors/` beside the model cache. */
export function aestheticSearchDirs(experimentDir: string | undefined, modelCacheDir: string): string[] {
  return [...(experimentDir ? [path.join(experimentDir, 'reward', 'priors')] : []), path.join(path.dirname(modelCacheDir), 'priors')];
}

/** The first predictor file found in `dirs`, or undefined. */
export function findAestheticWeights(dirs: string[]): string | undefined {
  for (const d of dirs) for (const n of AESTHETIC_FILE_NAMES) if (fs.existsSync(path.join(d, n))) return path.join(d, n);
  return undefined;
}

/** Why the predictor's weights are missing (`why`), and where a person can put them. */
export function missingAestheticWeights(dirs: string[], why: string): Error {
  return new Error(`the aesthetic reward needs the LAION aesthetic predictor's weights: ${why}. Connect to the Hub once to fetch them from ${AESTHETIC_HUB_REPO}, ` +
    `or download sac+logos+ava1-l14-linearMSE.pth (github.com/christophschuhmann/improved-aesthetic-predictor) or aesthetic-model.pth (${AESTHETIC_HUB_REPO}) ` +
    `and put it in ${dirs.join(' or ')} (or the same tensors as ${AESTHETIC_FILE_NAMES[0]})`);
}

function tensorOf(file: string, tensors: Map<string, SafeTensor>, name: string, shape: number[]): Float64Array {
  const t = tensors.get(name);
  if (!t) throw new Error(`${file} has no tensor "${name}": it is not the LAION aesthetic predictor's state dict (expected ${expectedNames()})`);
  if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
    throw new Error(`${file}: tensor "${name}" is [${t.shape.join(', ')}], the aesthetic predictor's is [${shape.join(', ')}]; this is another head (the ReLU variant and other widths are not read)`);
  }
  return Float64Array.from(toFloat32(t));
}

const expectedNames = () => AESTHETIC_LAYERS.map((i) => `layers.${i}.weight/bias`).join(', ');
