import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { encodeJpeg } from '../image/jpeg';
import { loadImageRGB } from './backbone';
import { atomicWriteFileSync, resolveInside } from '../fsutil';
import { readRatings } from './store';

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
  file: string;
}

/**
 * Write an experiment's ratings as a Pick-a-Pic-schema dataset: `<out>/train.jsonl` plus `<out>/images/*.jpg`
 * (quality-95 JPEGs, de-duplicated by content). Image 0 is always the pair's first image, so repeats of a pair
 * line up; skips and retracted ratings are left out.
 */
export function exportPreferences(experimentDir: string, outDir: string): ExportSummary {
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
  let ties = 0, skipped = 0;
  for (const r of log.ratings) {
    if (r.choice === 'skip') { skipped++; continue; }
    const [first, second] = r.sideOrder === 'ab' ? [r.left, r.right] : [r.right, r.left];
    const firstWon = r.choice === (r.sideOrder === 'ab' ? 'left' : 'right');
    const label0 = r.choice === 'tie' ? 0.5 : firstWon ? 1 : 0;
    if (r.choice === 'tie') ties++;
    rows.push({
      caption: r.prompt, jpg_0: image(first), jpg_1: image(second), label_0: label0, label_1: 1 - label0,
      are_different: first !== second, has_label: true, user_id: r.rater, created_at: r.time, ranking_id: r.pairId,
    });
  }
  const file = path.join(outDir, 'train.jsonl');
  atomicWriteFileSync(file, rows.map((x) => JSON.stringify(x)).join('\n') + (rows.length ? '\n' : ''));
  return { rows: rows.length, images: written.size, ties, skipped, file };
}
