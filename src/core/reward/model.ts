import * as fs from 'node:fs';
import * as path from 'node:path';
import { f32, readSafetensorsWithMetadata, toFloat32, writeSafetensors, type SafeTensor } from '../safetensors';
import { LinearHead, MlpHead, type RewardHead } from './head';
import type { PairMetrics } from './metrics';
import type { RaterConsistency } from './consistency';

/** Where a trained reward model lives inside an experiment. */
export const rewardPaths = (experimentDir: string) => ({
  dir: path.join(experimentDir, 'reward'),
  head: path.join(experimentDir, 'reward', 'head.safetensors'),
  card: path.join(experimentDir, 'reward', 'card.json'),
});

/** The human-readable summary saved next to the head. */
export interface RewardCard {
  format: 'ddpo-reward-card';
  version: 1;
  trainedAt: string;
  backbone: string;
  head: { kind: 'linear' | 'mlp'; hidden?: number; inputDim: number; bestEpoch: number };
  data: { ratings: number; comparisons: number; ties: number; skips: number; trainComparisons: number; heldOutComparisons: number };
  heldOut: PairMetrics;
  learningCurve: { comparisons: number; accuracy: number; logLoss: number }[];
  rater: RaterConsistency;
  /** One sentence for the rater: how well the model knows them. */
  summary: string;
}

/** Save head weights (safetensors) and card (JSON) under `<experiment>/reward/`. */
export function saveRewardModel(experimentDir: string, head: RewardHead, card: RewardCard): void {
  const p = rewardPaths(experimentDir);
  fs.mkdirSync(p.dir, { recursive: true });
  const tensors: Record<string, SafeTensor> = { 'norm.mean': f32([head.inputDim], head.mean), 'norm.std': f32([head.inputDim], head.std) };
  for (const [k, t] of head.params()) tensors[`head.${k}`] = f32(t.shape, t.data);
  writeSafetensors(p.head, tensors, { format: 'ddpo-reward-head', kind: head.kind, backbone: card.backbone });
  fs.writeFileSync(p.card, JSON.stringify(card, null, 2) + '\n');
}

/** Load a head saved by saveRewardModel; `backbone` says which features it expects. */
export function loadRewardHead(file: string): { head: RewardHead; backbone: string } {
  if (!fs.existsSync(file)) throw new Error(`no reward model at ${file}: run \`ddpo reward train\` first`);
  const { tensors, metadata } = readSafetensorsWithMetadata(file);
  const get = (k: string) => {
    const t = tensors.get(k);
    if (!t) throw new Error(`${file} has no tensor "${k}"; is it a DDPO Studio reward head (format ddpo-reward-head)?`);
    return toFloat32(t).slice();
  };
  const mean = get('norm.mean'), std = get('norm.std');
  const kind = metadata.kind;
  const head = kind === 'mlp'
    ? new MlpHead(mean, std, tensors.get('head.b1')?.shape[0] ?? 0, get('head.w1'), get('head.b1'), get('head.w2'))
    : kind === 'linear' ? new LinearHead(mean, std, get('head.w'))
    : null;
  if (!head) throw new Error(`${file}: unknown head kind "${kind}" (expected linear or mlp)`);
  return { head, backbone: metadata.backbone ?? 'unknown' };
}

/** Something that maps an embedding to a reward. */
export interface EmbeddingScorer {
  score(x: Float32Array): number;
}

/**
 * An aesthetic-predictor-style head: a stack of linear layers over an (optionally L2-normalised) CLIP embedding,
 * loaded from safetensors with keys `layers.<i>.weight [out,in]` / `layers.<i>.bias` (LAION's improved
 * aesthetic predictor) or a single `weight`/`bias` (a linear probe).
 */
export function loadLinearStackHead(file: string, opts: { normalize?: boolean; activation?: 'none' | 'relu' | 'gelu' } = {}): EmbeddingScorer & { inputDim: number } {
  const { tensors } = readSafetensorsWithMetadata(file);
  const names = [...tensors.keys()];
  const prefixes = names.includes('weight') ? [''] : [...new Set(names.filter((n) => /(^|\.)\d+\.weight$/.test(n)).map((n) => n.slice(0, -'weight'.length)))]
    .sort((a, b) => Number(a.match(/(\d+)\.$/)![1]) - Number(b.match(/(\d+)\.$/)![1]));
  if (!prefixes.length) throw new Error(`${file}: found no linear layers (expected "weight"/"bias" or "layers.<i>.weight"; have ${names.slice(0, 8).join(', ')})`);
  const layers = prefixes.map((p) => {
    const w = tensors.get(p + 'weight')!;
    if (w.shape.length !== 2) throw new Error(`${file}: ${p}weight has shape [${w.shape}], expected [out, in]`);
    const b = tensors.get(p + 'bias');
    return { out: w.shape[0], in: w.shape[1], w: toFloat32(w), b: b ? toFloat32(b) : new Float32Array(w.shape[0]) };
  });
  for (let i = 1; i < layers.length; i++) if (layers[i].in !== layers[i - 1].out) throw new Error(`${file}: layer ${prefixes[i]} takes ${layers[i].in} inputs but the previous layer gives ${layers[i - 1].out}`);
  if (layers.at(-1)!.out !== 1) throw new Error(`${file}: the last layer gives ${layers.at(-1)!.out} outputs; a reward head must give 1`);
  const act = opts.activation ?? 'none';
  const f = (v: number) => (act === 'relu' ? Math.max(0, v) : act === 'gelu' ? 0.5 * v * (1 + Math.tanh(0.7978845608 * (v + 0.044715 * v ** 3))) : v);
  return {
    inputDim: layers[0].in,
    score(x: Float32Array): number {
      if (x.length !== layers[0].in) throw new Error(`aesthetic head ${file} expects ${layers[0].in}-dim embeddings, got ${x.length}`);
      let h: Float32Array = x;
      if (opts.normalize ?? true) { const n = Math.hypot(...h) || 1; h = h.map((v) => v / n); }
      layers.forEach((l, li) => {
        const o = new Float32Array(l.out);
        for (let r = 0; r < l.out; r++) { let s = l.b[r]; for (let c = 0; c < l.in; c++) s += l.w[r * l.in + c] * h[c]; o[r] = li < layers.length - 1 ? f(s) : s; }
        h = o;
      });
      return h[0];
    },
  };
}
