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
