import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { encodeJpeg } from '../image/jpeg';
import { loadImageRGB } from './backbone';
import { atomicWriteFileSync, resolveInside } from '../fsutil';
import { RATINGS_FILE, readRatings } from './store';

/** One row of a Pick-a-Pic-style preference dataset (image columns hold paths relative to the dataset folder). */
export interface PickAPicRow {
  caption: string;
  jpg_0: string;
  jpg_1: string;
  /** 1/0 for a win/loss of image 0; 0.5/0.5 for a tie. */
  label_0: number;
  label_1: number;
  are_different: boolean;
  has_label: boolean;
  user_id: string;
  created_at: string;
  ranking_id: string;
}

/** What exportPreferences wrote. */
export interface ExportSummary {
  rows: number;
  images: number;
  ties: number;
  skipped: number;
  /** Ratings left out because an image of theirs could not be read (moved, deleted, damaged), with the first reason. */
  unreadable: number;
  firstUnreadable?: string;
  file: string;
}

/**
 * Write an experiment's ratings as a Pick-a-Pic-schema dataset: `<out>/train.jsonl` plus `<out>/images/*.jpg`
 * (quality-95 JPEGs, de-duplicated by content). Image 0 is always the pair's first image, so repeats of a pair
 * line up; skips and retracted ratings are left out.
 */
export function exportPreferences(experimentDir: string, outDir: string, o: { force?: boolean } = {}): ExportSummary {
  // a mistyped folder would read as no ratings and replace a dataset with an empty one
  if (!fs.existsSync(path.join(experimentDir, RATINGS_FILE))) throw new Error(`${experimentDir} has no ${RATINGS_FILE}: give an experiment folder with ratings (.ddpo/<name>)`);
  const file = path.join(outDir, 'train.jsonl');
  if (fs.existsSync(file) && !o.force) throw new Error(`${file} exists; pass --force to replace it, or choose another --out`);
  const log = readRatings(experimentDir);
  fs.mkdirSync(path.join(outDir, 'images'), { recursive: true });
  const written = new Map<string, string>();
  const image = (rel: string): string => {
    const src = resolveInside(experimentDir, rel);
    const known = written.get(src);
    if (known) return known;
    const jpg = encodeJpeg(loadImageRGB(src), { quality: 95 });
    const name = `images/${createHash('sha256').update(jpg).digest('hex').slice(0, 16)}.jpg`;
    atomicWriteFileSync(path.join(outDir, name), jpg);
    written.set(src, name);
    return name;
  };
  const rows: PickAPicRow[] = [];
  let ties = 0, skipped = 0, unreadable = 0, firstUnreadable: string | undefined;
  for (const r of log.ratings) {
    if (r.choice === 'skip') { skipped++; continue; }
    const [first, second] = r.sideOrder === 'ab' ? [r.left, r.right] : [r.right, r.left];
    const firstWon = r.choice === (r.sideOrder === 'ab' ? 'left' : 'right');
    const label0 = r.choice === 'tie' ? 0.5 : firstWon ? 1 : 0;
    let jpg0: string, jpg1: string;
    try {
      [jpg0, jpg1] = [image(first), image(second)];
    } catch (e) {
      // as reward training does: a rating whose image is gone is left out, not the whole export
      unreadable++;
      firstUnreadable ??= (e as Error).message;
      continue;
    }
    if (r.choice === 'tie') ties++;
    rows.push({
      caption: r.prompt, jpg_0: jpg0, jpg_1: jpg1, label_0: label0, label_1: 1 - label0,
      are_different: first !== second, has_label: true, user_id: r.rater, created_at: r.time, ranking_id: r.pairId,
    });
  }
  atomicWriteFileSync(file, rows.map((x) => JSON.stringify(x)).join('\n') + (rows.length ? '\n' : ''));
  return { rows: rows.length, images: written.size, ties, skipped, unreadable, ...(firstUnreadable ? { firstUnreadable } : {}), file };
}
