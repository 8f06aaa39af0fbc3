/** Where a model's time goes: onnxruntime's profiler (node events, and GPU kernel timestamps from GPU providers) summed per op. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as ort from 'onnxruntime-node';
import { atomicWriteFileSync } from '../fsutil';
import type { ExecutionProvider } from './providers';

/** One op type's share of a profiled run. */
export interface OpTime {
  /** Event category: `Node` (host-side kernel time; for GPU providers the dispatch) or the provider's own (GPU) category. */
  cat: string;
  op: string;
  /** Milliseconds per run. */
  ms: number;
  /** Events per run. */
  count: number;
}

/** A profile summed per op type. */
export interface ProfileSummary {
  runs: number;
  /** `model_run` wall milliseconds of each profiled run. */
  runMs: number[];
  /** Per category, the total milliseconds per run. */
  totals: Record<string, number>;
  /** Heaviest op types first, at most `top` per category. */
  ops: OpTime[];
  /** The raw profile, gzipped. */
  file?: string;
}

interface TraceEvent { cat?: string; name?: string; ph?: string; dur?: number; args?: Record<string, unknown> }

/** The profile files onnxruntime wrote for `profileFilePrefix` (it appends a timestamp and `.json`), oldest first. */
export function profileFiles(prefix: string): string[] {
  const dir = path.dirname(prefix), base = path.basename(prefix);
  return fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json')).sort().map((f) => path.join(dir, f));
}

/** Sums a Chrome-trace profile (onnxruntime's format) per category and op type, per run of `runs`. */
export function summarizeProfile(events: TraceEvent[], runs: number, top = 25): ProfileSummary {
  const runMs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => (e.dur ?? 0) / 1000);
  const sums = new Map<string, { cat: string; op: string; us: number; n: number }>();
  for (const e of events) {
    if (e.ph !== 'X' || e.cat === 'Session' || !e.dur) continue;
    const cat = e.cat ?? '?';
    // host events carry op_name; GPU kernel events are named `node&OpType&Program`
    const parts = (e.name ?? '?').split('&');
    const op = String(e.args?.op_name ?? (parts.length >= 2 ? parts[1] + (parts[2] && parts[2] !== parts[1] ? `:${parts[2]}` : '') : parts[0].replace(/_kernel_time$/, '')));
    const key = `${cat}\u0000${op}`;
    const s = sums.get(key) ?? { cat, op, us: 0, n: 0 };
    s.us += e.dur;
    s.n++;
    sums.set(key, s);
  }
  const totals: Record<string, number> = {};
  for (const s of sums.values()) totals[s.cat] = (totals[s.cat] ?? 0) + s.us / 1000 / runs;
  const ops: OpTime[] = [];
  for (const cat of Object.keys(totals)) {
    const rows = [...sums.values()].filter((s) => s.cat === cat).sort((a, b) => b.us - a.us).slice(0, top);
    for (const r of rows) ops.push({ cat, op: r.op, ms: r.us / 1000 / runs, count: r.n / runs });
  }
  return { runs, runMs, totals, ops };
}

/** Opens `file` with profiling on, runs it `runs` times (after one unprofiled-in-summary warm-up), and sums the profile. */
export async function profileModel(file: string, ep: ExecutionProvider, options: ort.InferenceSession.SessionOptions,
  feeds: Record<string, ort.Tensor>, runs: number, outDir: string, label: string): Promise<ProfileSummary> {
  fs.mkdirSync(outDir, { recursive: true });
  const prefix = path.join(outDir, `profile-${label}`);
  const s = await ort.InferenceSession.create(file, {
    executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'], ...options, enableProfiling: true, profileFilePrefix: prefix,
  });
  let written: string | undefined;
  try {
    const sync = async (o: ort.InferenceSession.OnnxValueMapType) => { for (const v of Object.values(o)) if (v.location !== 'cpu') await v.getData(true); };
    await sync(await s.run(feeds));
    for (let i = 0; i < runs; i++) await sync(await s.run(feeds));
    s.endProfiling();
  } finally {
    await s.release();
    written = profileFiles(prefix).at(-1);
  }
  if (!written) throw new Error(`onnxruntime wrote no profile under ${prefix}*`);
  const events = JSON.parse(fs.readFileSync(written, 'utf8')) as TraceEvent[];
  // the first model_run is the warm-up: drop its events by keeping only those after the second run started
  const starts = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => (e as { ts?: number }).ts ?? 0).sort((a, b) => a - b);
  const after = starts.length > runs ? starts[starts.length - runs] : -Infinity;
  const kept = events.filter((e) => ((e as { ts?: number }).ts ?? 0) >= after);
  const gz = `${written}.gz`;
  atomicWriteFileSync(gz, zlib.gzipSync(fs.readFileSync(written)));
  fs.rmSync(written);
  return { ...summarizeProfile(kept, runs), file: gz };
}

/** The summary as text: per-run totals per category, then the heaviest op types. */
export function renderProfile(p: ProfileSummary, rows = 12): string {
  const lines = [`profiled ${p.runs} runs: ${p.runMs.slice(-p.runs).map((m) => m.toFixed(1)).join(', ')} ms; per run: ` +
    Object.entries(p.totals).map(([c, ms]) => `${c} ${ms.toFixed(1)} ms`).join(', ')];
  for (const cat of Object.keys(p.totals)) {
    const total = p.totals[cat];
    lines.push(`  ${cat}: ` + p.ops.filter((o) => o.cat === cat).slice(0, rows)
      .map((o) => `${o.op} ${o.ms.toFixed(2)} ms (${((100 * o.ms) / total).toFixed(0)}%, ${o.count}×)`).join(', '));
  }
  return lines.join('\n');
}
