/**
 * Blind comparisons: base-model and checkpoint images for the same prompt and seed, stored under
 * `<exp>/compare/<id>/` with random file names, so nothing the rating panel sees tells which side is which.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFile, resolveInsideOrUndefined } from '../fsutil';
import { readRatings } from '../reward/store';
import { blindOutcome, scoreBlind, type BlindScore } from '../reward/blindScore';
import type { QueuedPair } from '../../protocol';

/** Folder of all comparisons inside an experiment. */
export const COMPARE_DIR = 'compare';
/** The comparison's key: which image came from which model. Never sent to a webview. */
export const MANIFEST_FILE = 'manifest.json';

/** One prompt+seed of a comparison (image paths relative to the comparison folder). */
export interface CompareItem {
  pairId: string;
  prompt: string;
  seed: number;
  base: string;
  tuned: string;
}

/** `compare/<id>/manifest.json`. */
export interface CompareManifest {
  id: string;
  /** Checkpoint epoch compared against the base model. */
  epoch: number;
  createdAt: string;
  items: CompareItem[];
}

/** A comparison's id from its checkpoint epoch and creation time, e.g. `epoch-000003-20260101T120000`. */
export function newCompareId(epoch: number, now = new Date()): string {
  return `epoch-${String(epoch).padStart(6, '0')}-${now.toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
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
      const m = JSON.parse(fs.readFileSync(path.join(experimentDir, COMPARE_DIR, n, MANIFEST_FILE), 'utf8')) as CompareManifest;
      if (m.id === n && Array.isArray(m.items) && imagesInside(compareDir(experimentDir, n), m)) out.push(m);
    } catch {
      // incomplete comparison (interrupted while generating)
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

// Image paths come from a file anyone can edit: a manifest naming an image outside its comparison folder is refused.
function imagesInside(dir: string, m: CompareManifest): boolean {
  return m.items.every((it) => resolveInsideOrUndefined(dir, it?.base) && resolveInsideOrUndefined(dir, it?.tuned));
}

/** Unrated items of a comparison as queue items, sides shuffled by a hash of the pair id; `ratedPairs` defaults to those in its log. */
export function compareQueue(experimentDir: string, m: CompareManifest, ratedPairs?: Iterable<string>): QueuedPair[] {
  const rated = new Set(ratedPairs ?? readRatings(compareDir(experimentDir, m.id)).ratings.map((r) => r.pairId));
  return m.items.filter((it) => !rated.has(it.pairId)).map((it) => {
    const tunedLeft = (createHash('sha256').update(`${m.id}/${it.pairId}`).digest()[0] & 1) === 1;
    return { id: it.pairId, pairId: it.pairId, prompt: it.prompt, left: tunedLeft ? it.tuned : it.base, right: tunedLeft ? it.base : it.tuned, sideOrder: 'ab' as const };
  });
}

/** Result of a comparison so far: the checkpoint's score over the base (ties count half, skips not at all). */
export interface CompareResult extends BlindScore {
  id: string;
  epoch: number;
  total: number;
  /** Ratings given, skips included. */
  rated: number;
}

/** Scores a comparison from its ratings; `ratings` defaults to those in its log. */
export function compareResult(experimentDir: string, m: CompareManifest, ratings = readRatings(compareDir(experimentDir, m.id)).ratings): CompareResult {
  const tuned = new Set(m.items.map((it) => it.tuned));
  const score = scoreBlind(ratings.map((r) => blindOutcome(r.choice, tuned.has(r.left) ? 'left' : 'right')));
  return { id: m.id, epoch: m.epoch, total: m.items.length, rated: ratings.length, ...score };
}
