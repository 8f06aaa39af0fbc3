/** Our benchmark JSON next to the PyTorch anchor's (../shared/device/anchor_torch.py): times, ratios and the targets. */

/** The anchor's printed JSON (milliseconds, GiB). */
export interface AnchorResult {
  device?: string;
  torch?: string;
  fwd_fp32_b2_ms?: number;
  fwd_tf32_b2_ms?: number;
  fwd_fp16_b2_ms?: number;
  fwd_fp16_b16_ms?: number;
  train_lora_fp16_b1_ms?: number;
  train_b1_peak_gib?: number;
}

interface OursSample { precision: string; batch: number; msPerEval: number; deviceMsPerEval?: number; ep: string; attention?: string }
interface OursTrain { precision: string; stepMs: number; ep: string; timestepsPerRun?: number; msPerTimestep?: number; attention?: 'recompute' | 'keep' }
/** The parts of `ddpo bench --out` JSON the comparison reads. */
export interface OursResult {
  device?: { gpu?: string };
  sample?: OursSample[];
  train?: OursTrain[];
  memory?: Record<string, number | undefined>;
}

/** One compared measurement; ratio = ours / PyTorch (below 1 is faster / smaller). */
export interface CompareRow {
  what: string;
  ours?: number;
  torch?: number;
  ratio?: number;
  /** The target for this row, when it has one: ratio ≤ 1. */
  target: boolean;
}

/** Pairs our measurements with the anchor's. Memory compares nvidia-smi's used-memory rise with torch's max_memory_allocated. */
export function compareWithAnchor(ours: OursResult, anchor: AnchorResult): CompareRow[] {
  // the fastest attention variant measured for this precision and batch, named when it is not the decomposed one
  const best = (p: string, b: number) => (ours.sample ?? []).filter((x) => x.precision === p && x.batch === b)
    .map((x) => ({ ms: x.deviceMsPerEval ?? x.msPerEval, attention: x.attention ?? 'decomposed' })).sort((x, y) => x.ms - y.ms)[0];
  const fwd = (p: string, b: number) => best(p, b)?.ms;
  const tag = (p: string, b: number) => { const a = best(p, b)?.attention; return a && a !== 'decomposed' ? ` [${a}]` : ''; };
  const recomputing = (t: OursTrain) => t.attention !== 'keep';
  const train = (p: string) => ours.train?.find((t) => t.precision === p && (t.timestepsPerRun ?? 1) === 1 && recomputing(t))?.stepMs;
  const mem = ours.memory ?? {};
  // `p`: fp16, or fp16_k2 for 2 timesteps per run (bench's memory keys)
  const gpuPeak = (p: string) => {
    const peak = mem[`train_${p}_PeakGpuMiB`], base = mem.gpuBaselineMiB;
    return peak === undefined ? undefined : (peak - (base ?? 0)) / 1024;
  };
  const row = (what: string, o: number | undefined, t: number | undefined, target = false): CompareRow =>
    ({ what, ours: o, torch: t, ratio: o !== undefined && t ? o / t : undefined, target });
  // K timesteps per graph run: the time per sample-timestep is what stands against PyTorch's one-timestep step
  const packed = (ours.train ?? []).filter((t) => (t.timestepsPerRun ?? 1) > 1 && recomputing(t));
  // the same step keeping every attention probability: what recomputing them saves
  const kept = (ours.train ?? []).filter((t) => !recomputing(t)).flatMap((t) => [
    row(`DDPO LoRA train step b1 CFG, ${t.precision}, attention probabilities kept vs torch fp16 (ms)`, t.stepMs, anchor.train_lora_fp16_b1_ms),
    row(`train step peak GPU memory, ${t.precision}, attention probabilities kept (GiB)`, gpuPeak(`${t.precision}_keep`), anchor.train_b1_peak_gib),
  ]);
  const packedTime = packed.map((t) => row(`DDPO LoRA train b1 CFG, ${t.precision}, ${t.timestepsPerRun} timesteps per run: ms per timestep vs torch fp16 step (ms)`,
    t.msPerTimestep ?? t.stepMs / t.timestepsPerRun!, anchor.train_lora_fp16_b1_ms));
  const packedMemory = packed.map((t) => row(`train step peak GPU memory, ${t.precision}, ${t.timestepsPerRun} timesteps per run (GiB)`,
    gpuPeak(`${t.precision}_k${t.timestepsPerRun}`), anchor.train_b1_peak_gib));
  return [
    row(`UNet fwd batch 2, fp32${tag('fp32', 2)} vs torch fp32 (ms)`, fwd('fp32', 2), anchor.fwd_fp32_b2_ms),
    row(`UNet fwd batch 2, fp32${tag('fp32', 2)} vs torch TF32 (ms)`, fwd('fp32', 2), anchor.fwd_tf32_b2_ms),
    row(`UNet fwd batch 2, fp16${tag('fp16', 2)} vs torch fp16 autocast (ms)`, fwd('fp16', 2), anchor.fwd_fp16_b2_ms),
    row(`UNet fwd batch 16, fp16${tag('fp16', 16)} vs torch fp16 autocast (ms)`, fwd('fp16', 16), anchor.fwd_fp16_b16_ms, true),
    row('DDPO LoRA train step b1 CFG, fp16 vs torch fp16 (ms)', train('fp16'), anchor.train_lora_fp16_b1_ms, true),
    row('DDPO LoRA train step b1 CFG, fp32 vs torch fp16 (ms)', train('fp32'), anchor.train_lora_fp16_b1_ms),
    ...packedTime,
    row('train step peak GPU memory, fp16 (GiB)', gpuPeak('fp16'), anchor.train_b1_peak_gib, true),
    row('train step peak GPU memory, fp32 (GiB)', gpuPeak('fp32'), anchor.train_b1_peak_gib),
    ...packedMemory,
    ...kept,
  ];
}

/** The comparison as an aligned text table. */
export function renderComparison(rows: CompareRow[], ours: OursResult, anchor: AnchorResult): string {
  const f = (v: number | undefined, d = 1) => (v === undefined ? '—' : v.toFixed(d));
  const table = [['measurement', 'ours', 'PyTorch', 'ours/PyTorch', 'target']];
  for (const r of rows) table.push([r.what, f(r.ours), f(r.torch), f(r.ratio, 2), r.target ? (r.ratio === undefined ? '≤ 1 (not measured)' : r.ratio <= 1 ? '≤ 1 met' : '≤ 1 MISSED') : '']);
  const w = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  const eps = [...new Set([...(ours.sample ?? []), ...(ours.train ?? [])].map((x) => x.ep))].join(', ');
  return [`GPU: ${anchor.device ?? ours.device?.gpu ?? 'unknown'}; ours on ${eps || '?'}; PyTorch ${anchor.torch ?? '?'}`,
    ...table.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd())].join('\n');
}
