/**
 * Blind comparisons: images of two models (A and B, each the base model or a checkpoint of one of the experiment's
 * runs, e.g. DDPO against Diffusion-DPO) for the same prompt and seed, stored under `<exp>/compare/<id>/` with random
 * file names, so nothing the rating panel sees tells which side is which. The manifest says which is which.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFile, resolveInsideOrUndefined } from '../fsutil';
import { readRatings } from '../reward/store';
import { blindOutcome, scoreBlind, type BlindScore } from '../reward/blindScore';
import { ALGORITHM_NAMES, type CompareSide, type QueuedPair } from '../../protocol';

/** Folder of all comparisons inside an experiment. */
export const COMPARE_DIR = 'compare';
/** The comparison's key: which image came from which model. Never sent to a webview. */
export const MANIFEST_FILE = 'manifest.json';

/** One prompt+seed of a comparison: the images of model A and model B (paths relative to the comparison folder). */
export interface CompareItem {
  pairId: string;
  prompt: string;
  seed: number;
  a: string;
  b: string;
}

/** `compare/<id>/manifest.json`: the two models and their images; the win rate is B's over A. */
export interface CompareManifest {
  id: string;
  createdAt: string;
  a: CompareSide;
  b: CompareSide;
  items: CompareItem[];
}

/** A comparison's id from what it compares and its creation time, e.g. `epoch-000003-20260101T120000` (B a DDPO checkpoint, A the base model). */
export function newCompareId(a: CompareSide, b: CompareSide, now = new Date()): string {
  const part = (s: CompareSide) => (s.kind === 'base' ? 'base' : `${s.algorithm === 'ddpo' ? '' : 'dpo-'}epoch-${String(s.epoch).padStart(6, '0')}`);
  const what = a.kind === 'base' ? part(b) : `${part(b)}-vs-${part(a)}`;
  return `${what}-${now.toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
}

/** A side for people: "base model", "DDPO epoch 3", "Diffusion-DPO epoch 6" (epochs 1-based). */
export function sideLabel(s: CompareSide): string {
  return s.kind === 'base' ? 'base model' : `${ALGORITHM_NAMES[s.algorithm]} epoch ${s.epoch + 1}`;
}

/** What a comparison compares, B first: "DDPO epoch 20 vs base model". */
export function compareLabel(m: Pick<CompareManifest, 'a' | 'b'>): string {
  return `${sideLabel(m.b)} vs ${sideLabel(m.a)}`;
}

/** A random image file name inside a comparison (`images/<hex>.png`). */
export function blindImageName(): string {
  return `images/${randomBytes(8).toString('hex')}.png`;
}

/** Absolute folder of comparison `id`. */
export function compareDir(experimentDir: string, id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$/.test(id)) throw new Error(`"${id}" is not a comparison id (expected letters, digits, ".", "_" or "-")`);
  return path.join(experimentDir, COMPARE_DIR, id);
}

/** Writes the manifest (last, so its presence marks a complete comparison). */
export async function saveManifest(experimentDir: string, m: CompareManifest): Promise<void> {
  const dir = compareDir(experimentDir, m.id);
  await fs.promises.mkdir(dir, { recursive: true });
  await atomicWriteFile(path.join(dir, MANIFEST_FILE), JSON.stringify(m, null, 1) + '\n');
}

/** Complete comparisons of an experiment, oldest first. */
export function listComparisons(experimentDir: string): CompareManifest[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(experimentDir, COMPARE_DIR));
  } catch {
    return [];
  }
  const out: CompareManifest[] = [];
  for (const n of names) {
    try {
      const m = fromFile(JSON.parse(fs.readFileSync(path.join(experimentDir, COMPARE_DIR, n, MANIFEST_FILE), 'utf8')));
      if (m.id === n && Array.isArray(m.items) && imagesInside(compareDir(experimentDir, n), m)) out.push(m);
    } catch {
      // incomplete comparison (interrupted while generating)
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

// A manifest as read; one written before comparisons had two sides (base vs a DDPO checkpoint: `epoch`, and items
// with `base` and `tuned`) reads as A the base model, B that checkpoint.
function fromFile(raw: Record<string, unknown>): CompareManifest {
  if (raw.a !== undefined) return raw as unknown as CompareManifest;
  const items = (raw.items as { pairId: string; prompt: string; seed: number; base: string; tuned: string }[]).map((it) => ({ pairId: it.pairId, prompt: it.prompt, seed: it.seed, a: it.base, b: it.tuned }));
  return { id: raw.id as string, createdAt: raw.createdAt as string, a: { kind: 'base' }, b: { kind: 'checkpoint', algorithm: 'ddpo', epoch: raw.epoch as number }, items };
}

// Image paths come from a file anyone can edit: a manifest naming an image outside its comparison folder is refused.
function imagesInside(dir: string, m: CompareManifest): boolean {
  return m.items.every((it) => resolveInsideOrUndefined(dir, it?.a) && resolveInsideOrUndefined(dir, it?.b));
}

/** Unrated items of a comparison as queue items, sides shuffled by a hash of the pair id; `ratedPairs` defaults to those in its log. */
export function compareQueue(experimentDir: string, m: CompareManifest, ratedPairs?: Iterable<string>): QueuedPair[] {
  const rated = new Set(ratedPairs ?? readRatings(compareDir(experimentDir, m.id)).ratings.map((r) => r.pairId));
  return m.items.filter((it) => !rated.has(it.pairId)).map((it) => {
    const bLeft = (createHash('sha256').update(`${m.id}/${it.pairId}`).digest()[0] & 1) === 1;
    return { id: it.pairId, pairId: it.pairId, prompt: it.prompt, left: bLeft ? it.b : it.a, right: bLeft ? it.a : it.b, sideOrder: bLeft ? 'ba' as const : 'ab' as const };
  });
}

/** Result of a comparison so far: B's score over A (wins are B's; ties count half, skips not at all). */
export interface CompareResult extends BlindScore {
  id: string;
  a: CompareSide;
  b: CompareSide;
  /** "DDPO epoch 20 vs base model" (B first). */
  label: string;
  total: number;
  /** Ratings given, skips included. */
  rated: number;
}

/** Whether every pair of a comparison has an answer: only then is its win rate shown (see {@link latestResult}). */
export const ratedThrough = (c: Pick<CompareResult, 'rated' | 'total'>): boolean => c.rated >= c.total;

/**
 * The newest comparison whose win rate may be shown: rated through, with a decisive answer. One still being rated shows
 * none, since a rate that moves with each answer would tell the rater which side is the fine-tuned model.
 */
export function latestResult(comparisons: readonly CompareResult[]): CompareResult | undefined {
  return [...comparisons].reverse().find((c) => ratedThrough(c) && c.winRate.n > 0);
}

/** Scores a comparison from its ratings (B is the side blindScore counts as "tuned"); `ratings` defaults to those in its log. */
export function compareResult(experimentDir: string, m: CompareManifest, ratings = readRatings(compareDir(experimentDir, m.id)).ratings): CompareResult {
  const b = new Set(m.items.map((it) => it.b));
  const score = scoreBlind(ratings.map((r) => blindOutcome(r.choice, b.has(r.left) ? 'left' : 'right')));
  return { id: m.id, a: m.a, b: m.b, label: compareLabel(m), total: m.items.length, rated: ratings.length, ...score };
}
