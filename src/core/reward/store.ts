import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Rating, RatingsRecord, Retraction } from './types';
import { CHOICES, isChoice } from '../../protocol';
import { appendLineDurableSync, fsyncDirSync, resolveInside } from '../fsutil';

/** File name of the preference log inside an experiment folder. */
export const RATINGS_FILE = 'ratings.jsonl';

/** What the caller supplies for a new rating; id and time are filled in when absent. */
export type NewRating = Omit<Rating, 'kind' | 'id' | 'time'> & { id?: string; time?: string };

/**
 * Append-only preference log. Every append is written with one write() and fsynced before it returns,
 * so a caller that acknowledges after `append` never acknowledges a rating a crash can lose.
 */
export class PreferenceStore {
  private fd: number;
  readonly file: string;

  private constructor(readonly experimentDir: string) {
    fs.mkdirSync(experimentDir, { recursive: true });
    this.file = path.join(experimentDir, RATINGS_FILE);
    const existed = fs.existsSync(this.file);
    this.fd = fs.openSync(this.file, 'a');
    if (existed) this.terminateTornTail();
    else fsyncDirSync(experimentDir); // the new directory entry must survive a crash too
  }

  /** Open (creating if needed) `<experimentDir>/ratings.jsonl` for appending. */
  static open(experimentDir: string): PreferenceStore {
    return new PreferenceStore(experimentDir);
  }

  /** Append a rating durably and return the stored record. */
  append(input: NewRating): Rating {
    const rating: Rating = { kind: 'rating', id: input.id ?? randomUUID(), time: input.time ?? new Date().toISOString(), ...stripUndefined(input) } as Rating;
    validateRating(rating, this.experimentDir);
    this.writeRecord(rating);
    return rating;
  }

  /** Undo a rating by appending a retraction (the log is never rewritten). */
  retract(id: string, time = new Date().toISOString()): Retraction {
    const r: Retraction = { kind: 'retract', id, time };
    this.writeRecord(r);
    return r;
  }

  /** Close the file; further appends fail. */
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private writeRecord(rec: RatingsRecord): void {
    if (this.fd < 0) throw new Error(`preference store for ${this.file} is closed`);
    appendLineDurableSync(this.fd, JSON.stringify(rec), this.file);
  }

  // A crash mid-append can leave a line without its newline; end it so the next record starts on its own line.
  private terminateTornTail(): void {
    const size = fs.fstatSync(this.fd).size;
    if (size === 0) return;
    const rfd = fs.openSync(this.file, 'r');
    const last = Buffer.alloc(1);
    fs.readSync(rfd, last, 0, 1, size - 1);
    fs.closeSync(rfd);
    if (last[0] !== 0x0a) appendLineDurableSync(this.fd, '', this.file);
  }
}

/** One line of the log that could not be used, and why. */
export interface RatingsProblem {
  line: number;
  reason: string;
  text: string;
}

/** The first `shown` problems of a ratings log, one line each, then one line counting the rest. */
export function summarizeRatingsProblems(problems: readonly RatingsProblem[], shown = 5): string[] {
  const lines = problems.slice(0, shown).map((p) => `${RATINGS_FILE} line ${p.line}: ${p.reason}`);
  if (problems.length > shown) {
    lines.push(`... and ${problems.length - shown} more unusable lines of ${RATINGS_FILE} skipped (${problems.length} in all, the last at line ${problems[problems.length - 1].line})`);
  }
  return lines;
}

/** The log as read back: effective ratings (retractions applied, file order) and anything skipped. */
export interface RatingsLog {
  ratings: Rating[];
  retracted: Set<string>;
  problems: RatingsProblem[];
  /** The 1-based line of each rating in the file, for messages about it. */
  lineOf: Map<Rating, number>;
  /** True when the last line had no newline and did not parse: a write cut short by a crash. */
  tornTail: boolean;
}

/** Read `<experimentDir>/ratings.jsonl`; never throws on bad content (a missing file is an empty log). */
export function readRatings(experimentDir: string): RatingsLog {
  const file = path.join(experimentDir, RATINGS_FILE);
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  return parseRatings(text, experimentDir);
}

/** Parse log text; see readRatings. */
export function parseRatings(text: string, experimentDir: string): RatingsLog {
  const lines = text.split('\n');
  const endsClean = text.length === 0 || text.endsWith('\n');
  if (endsClean) lines.pop();
  const all: Rating[] = [];
  const retracted = new Set<string>();
  const problems: RatingsProblem[] = [];
  const lineOf = new Map<Rating, number>();
  let tornTail = false;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const isLast = i === lines.length - 1 && !endsClean;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      if (isLast) tornTail = true;
      problems.push({ line: i + 1, reason: isLast ? 'torn last line (a write cut short by a crash); skipped' : 'not valid JSON; skipped', text: line.slice(0, 200) });
      return;
    }
    const r = rec as RatingsRecord;
    if (r && r.kind === 'retract' && typeof r.id === 'string') { retracted.add(r.id); return; }
    try {
      validateRating(r as Rating, experimentDir);
      all.push(r as Rating);
      lineOf.set(r as Rating, i + 1);
    } catch (e) {
      problems.push({ line: i + 1, reason: `${(e as Error).message}; skipped`, text: line.slice(0, 200) });
    }
  });
  return { ratings: all.filter((r) => !retracted.has(r.id)), retracted, problems, lineOf, tornTail };
}

/** Throw a readable error when a rating record is malformed or points outside the experiment. */
export function validateRating(r: Rating, experimentDir: string): void {
  if (!r || r.kind !== 'rating') throw new Error('record is neither a rating nor a retraction');
  for (const k of ['id', 'pairId', 'left', 'right', 'time', 'rater'] as const) {
    if (typeof r[k] !== 'string' || r[k].length === 0) throw new Error(`rating ${r.id ?? '?'} has no ${k}`);
  }
  if (typeof r.prompt !== 'string') throw new Error(`rating ${r.id} has no prompt`);
  if (!isChoice(r.choice)) throw new Error(`rating ${r.id} has choice "${r.choice}" (expected one of ${CHOICES.join(', ')})`);
  if (r.sideOrder !== 'ab' && r.sideOrder !== 'ba') throw new Error(`rating ${r.id} has sideOrder "${r.sideOrder}" (expected ab or ba)`);
  resolveInside(experimentDir, r.left);
  resolveInside(experimentDir, r.right);
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
