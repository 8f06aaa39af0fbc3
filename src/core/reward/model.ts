import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { atomicWriteFileSync, isDiskFull, resolveInside } from '../fsutil';
import { f32, readSafetensorsWithMetadata, toFloat32, writeSafetensors, type SafeTensor } from '../safetensors';
import { LinearHead, MlpHead, type RewardHead } from './head';
import { FEATURE_LAYOUTS, type FeatureLayout } from './headInput';
import { priorFromTensors } from './priors';
import { WarmHead } from './warmStart';
import type { RewardBackboneRef } from '../experiment/schema';
import type { PairMetrics } from './metrics';
import type { RaterConsistency } from './consistency';

/** Where a trained reward model lives inside an experiment: `card.json` names the head file it goes with. */
export const rewardPaths = (experimentDir: string) => ({
  dir: path.join(experimentDir, 'reward'),
  card: path.join(experimentDir, 'reward', 'card.json'),
});

/** The head file of reward models saved before the card named its head. */
const LEGACY_HEAD_FILE = 'head.safetensors';

/** The human-readable summary saved next to the head. */
export interface RewardCard {
  format: 'ddpo-reward-card';
  version: 1;
  trainedAt: string;
  /** The backbone's id (its weights' hash); `backboneLabel` names it for people, `backboneSource` says where it was opened from. */
  backbone: string;
  backboneLabel?: string;
  backboneSource?: RewardBackboneRef;
  /**
   * `file`: the head's weights in the same folder (absent in cards older than it: head.safetensors). `features`: what
   * the head sees (absent in older cards: `image`).
   */
  head: { kind: 'linear' | 'mlp'; hidden?: number; inputDim: number; bestEpoch: number; file?: string; features?: FeatureLayout; prior?: { name: string; scale: number } };
  /** `unreadable`: ratings left out because an image is missing or not a PNG (absent in older cards). */
  data: { ratings: number; comparisons: number; ties: number; skips: number; unreadable?: number; trainComparisons: number; heldOutComparisons: number };
  heldOut: PairMetrics;
  learningCurve: { comparisons: number; accuracy: number; logLoss: number }[];
  /**
   * Held-out accuracy with a few training comparisons, starting cold and warm from the prior `prior` (whose own
   * accuracy, before any rating, is `priorAccuracy`); absent when no prior was chosen or nothing was held out.
   */
  warmStart?: { prior: string; priorAccuracy: number; points: { comparisons: number; cold: number; warm: number }[] };
  rater: RaterConsistency;
  /** One sentence for the rater: how well the model knows them. */
  summary: string;
}

/**
 * Saves head weights (safetensors) and card (JSON) under `<experiment>/reward/` so that readers see the old pair
 * or the new one, never a mix: the head goes to a file of its own name first, then the card that names it
 * replaces the old card atomically (the commit), and only then are older heads removed. A failure before the
 * commit (a full disk, a kill) leaves the previous model in use. Returns the card as written.
 */
export function saveRewardModel(experimentDir: string, head: RewardHead, card: RewardCard): RewardCard {
  const p = rewardPaths(experimentDir);
  fs.mkdirSync(p.dir, { recursive: true });
  const file = `head-${card.trainedAt.replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}.safetensors`;
  const saved: RewardCard = { ...card, head: { ...card.head, file } };
  const tensors: Record<string, SafeTensor> = { 'norm.mean': f32([head.inputDim], head.mean), 'norm.std': f32([head.inputDim], head.std) };
  for (const [k, t] of head.params()) tensors[`head.${k}`] = f32(t.shape, t.data);
  const prior: Record<string, string> = head instanceof WarmHead ? { prior: head.prior.name, priorScale: String(head.scale) } : {};
  if (head instanceof WarmHead) Object.assign(tensors, head.prior.tensors());
  try {
    const meta = { format: 'ddpo-reward-head', kind: head.kind, backbone: card.backbone, features: card.head.features ?? 'image', ...prior, ...(card.backboneSource ? { backboneSource: JSON.stringify(card.backboneSource) } : {}) };
    writeSafetensors(path.join(p.dir, file), tensors, meta, { replace: false });
    atomicWriteFileSync(p.card, JSON.stringify(saved, null, 2) + '\n');
  } catch (e) {
    fs.rmSync(path.join(p.dir, file), { force: true });
    if (!isDiskFull(e)) throw e;
    throw new Error(`Could not save the reward model in ${p.dir}: the disk is full; the previous model there is kept. Free some disk space and train again.`, { cause: e });
  }
  removeOtherHeads(p.dir, file);
  return saved;
}

// Heads no card names any more: the one replaced, and any a kill left between writing a head and its card.
function removeOtherHeads(dir: string, keep: string): void {
  for (const n of fs.readdirSync(dir)) {
    if (n !== keep && /^head(-[\w-]+)?\.safetensors$/.test(n)) fs.rmSync(path.join(dir, n), { force: true });
  }
}

/** The saved reward model of an experiment: its card, when there is one, and the head file that card names. */
export function rewardModelFiles(experimentDir: string): { card?: RewardCard; head: string } {
  const p = rewardPaths(experimentDir);
  if (!fs.existsSync(p.card)) return { head: path.join(p.dir, LEGACY_HEAD_FILE) };
  let card: RewardCard;
  try {
    card = JSON.parse(fs.readFileSync(p.card, 'utf8')) as RewardCard;
  } catch (e) {
    throw new Error(`${p.card} is unreadable (${(e as Error).message}); train the reward model again with \`ddpo reward train\``);
  }
  const name = typeof card?.head?.file === 'string' ? card.head.file : LEGACY_HEAD_FILE;
  return { card, head: resolveInside(p.dir, name) };
}

/** A saved head with what it needs: the backbone id it was trained on, where that backbone was opened from, and its input layout. */
export interface LoadedRewardHead {
  head: RewardHead;
  backbone: string;
  /** Absent in heads saved before it was recorded. */
  backboneSource?: RewardBackboneRef;
  features: FeatureLayout;
}

/**
 * Loads an experiment's reward model through its card. A writer that replaced the model between reading the card
 * and opening its head has removed that head: the card is read once more.
 */
export function loadRewardModel(experimentDir: string): LoadedRewardHead & { file: string } {
  let files = rewardModelFiles(experimentDir);
  if (!fs.existsSync(files.head) && files.card) files = rewardModelFiles(experimentDir);
  return { ...loadRewardHead(files.head), file: files.head };
}

// A head file saved by saveRewardModel; `backbone` and `features` say what it expects.
function loadRewardHead(file: string): LoadedRewardHead {
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
  const features = (metadata.features ?? 'image') as FeatureLayout;
  if (!FEATURE_LAYOUTS.includes(features)) throw new Error(`${file}: unknown feature layout "${features}" (expected ${FEATURE_LAYOUTS.join(' or ')}); it was saved by a newer DDPO Studio: update it, or train the reward model again`);
  if (metadata.prior && !Number.isFinite(Number(metadata.priorScale))) throw new Error(`${file}: the prior's scale "${metadata.priorScale}" is not a number; train the reward model again`);
  const warm = metadata.prior ? new WarmHead(priorFromTensors(metadata.prior, tensors, file), features, Number(metadata.priorScale), head) : head;
  return { head: warm, backbone: metadata.backbone ?? 'unknown', backboneSource: parseSource(metadata.backboneSource), features };
}

function parseSource(json: string | undefined): RewardBackboneRef | undefined {
  if (!json) return undefined;
  try {
    const v = JSON.parse(json) as RewardBackboneRef;
    return typeof v?.id === 'string' ? { id: v.id, ...(typeof v.path === 'string' ? { path: v.path } : {}) } : undefined;
  } catch {
    return undefined; // the experiment's backbone is tried instead
  }
}
