/** `ddpo bench sample|train|all`: UNet throughput, one DDPO LoRA train step, build time and peak memory, as a table and JSON. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { defineCommand, type CliCommand, type CliIO, type FlagValues } from './command';
import { atomicWriteFileSync } from '../core/fsutil';
import type { ExecutionProvider } from '../core/runtime/providers';
import { ProviderOptions, chooseExecutionProviders, parseProviderSetting, listBackends, parseProviderOptions, providerList } from '../core/runtime/providers';
import { describePlacement, probeNodePlacement } from '../core/runtime/placement';
import { ATTENTION_VARIANTS, AttentionVariant, resolveBenchUnet } from '../core/bench/unet';
import { unetDimOverrides } from '../core/diffusion/unetRoles';
import { UnetTiming, benchDdimStep, benchUnetEval, unetFeeds } from '../core/bench/sample';
import { ProfileSummary, profileModel, renderProfile } from '../core/runtime/profile';
import { TrainTiming, benchTrainStep, buildDdpoTrainGraph, trainLabel } from '../core/bench/train';
import { compareWithAnchor, renderComparison } from '../core/bench/compare';
import { GpuMemorySampler, nvidiaGpuName, peakRssBytes, resetPeakRss } from '../core/runtime/memory';

type Precision = 'fp32' | 'fp16';
const OPTIONS = `[--unet sd15|sdxl|sdxl-tiny|fixture|DIR|FILE] [--ep auto|cpu|webgpu|cuda|dml|coreml]
    [--batch 2,16] [--latent 64] [--precision fp32,fp16 | --fp16] [--train-precision fp32,fp16] [--train-timesteps 1,2,4]
    [--attention decomposed,mha,mha-fold] [--warmup 2] [--runs 10 | --steps 10] [--placement] [--profile DIR] [--no-ddim] [--no-recompute]
    [--webgpu key=value,...] [--cache DIR] [--out FILE.json] [--anchor ANCHOR.json]
  sample  UNet evaluations per second at each --batch (static-shape sessions), and the DDIM step graph's cost
  train   one DDPO LoRA train step (r=4 on to_q/k/v/out, batch 1 with CFG = UNet batch 2): build time, step time
  all     both, plus peak memory (process RSS; GPU memory via nvidia-smi when present)
  --unet sd15 builds an SD 1.5-architecture UNet with random weights (~7 GB RAM; files cached under --cache); sdxl the
               SDXL base UNet (~45 GB RAM for a train step), sdxl-tiny its topology in miniature (text_time conditioning).
  --attention  sampling graphs' attention core: decomposed standard ops (default; what training uses),
               mha = com.microsoft.MultiHeadAttention, mha-fold = the same with the batch folded into the heads (batch 1).
  --train-timesteps  train steps with K of the sample's timesteps in one graph run (ddpo.json train_timesteps_per_run;
               UNet batch 2K), each K timed; ms per timestep is the number to set against a one-timestep step (default 1).
  --webgpu     WebGPU provider options, e.g. validationMode=disabled,preferredLayout=NHWC,storageBufferCacheMode=simple.
  --placement  also reports which nodes onnxruntime placed on the CPU (opens each model once more, verbose).
  --profile    also profiles the first --batch of each sampling variant and each train step (one more session each):
               milliseconds per op type (host dispatch and, on GPU providers, GPU kernel time); raw profiles gzipped in DIR.
  --no-recompute  the training graph keeps large attention probabilities for the backward instead of recomputing them.
  --anchor     print ratios against anchor_torch.py's JSON from the same GPU.
  --out        is rewritten after every measurement, so an interrupted run keeps what it measured.`;

const FLAGS = {
  unet: 'text', ep: 'text', batch: 'text', latent: 'integer>=0', precision: 'text', fp16: 'boolean', 'train-precision': 'text', 'train-timesteps': 'text',
  attention: 'text', warmup: 'integer>=0', runs: 'integer>=1', steps: 'integer>=1', placement: 'boolean', profile: 'text', 'no-ddim': 'boolean',
  'no-recompute': 'boolean', webgpu: 'text', cache: 'text', out: 'text', anchor: 'text',
} as const;

type BenchFlags = FlagValues<typeof FLAGS>;

function list(v: string | undefined, dflt: string): string[] {
  return (v ?? dflt).split(',').map((s) => s.trim()).filter(Boolean);
}

function precisions(v: string[], flag: string): Precision[] {
  for (const p of v) if (p !== 'fp32' && p !== 'fp16') throw new Error(`--${flag}: '${p}' is not fp32 or fp16`);
  return v as Precision[];
}

async function runBench(mode: 'sample' | 'train' | 'all', flags: BenchFlags, io: CliIO): Promise<number> {
  const s = benchSettings(flags, io);
  const unet = resolveBenchUnet(s.flags.unet ?? 'sd15', s.cacheDir, io.progress);
  for (const sk of s.plan.skipped) io.out(`note: ${sk.ep} skipped: ${sk.reason}`);
  const gpuName = nvidiaGpuName();
  const gpuMem = gpuName ? new GpuMemorySampler().start() : undefined;
  const rec = benchRecord(mode, s, gpuName, gpuMem);
  try {
    unet.model();
    rec.result.unet = { name: unet.name, parameters: unet.parameters, nodes: unet.model().graph.nodes.length, buildMs: unet.buildMs };
    io.out(`UNet ${unet.name}: ${((unet.parameters ?? 0) / 1e6).toFixed(1)}M parameters, ${unet.model().graph.nodes.length} nodes (built/loaded in ${((unet.buildMs ?? 0) / 1000).toFixed(1)} s)`);
    if (mode !== 'train') await benchSampling(s, unet, rec, gpuMem, io);
    if (mode !== 'sample') await benchTraining(s, unet, rec, gpuMem, io);
  } finally {
    gpuMem?.stop();
  }
  rec.save();
  rec.memory.gpuBaselineMiB = gpuMem?.peek()?.baselineMiB;
  io.out(renderTable(rec.sample, rec.train, rec.memory));
  if (s.flags.out !== undefined) io.out(`wrote ${s.flags.out}`);
  if (s.flags.anchor !== undefined) compareAnchor(s.flags.anchor, rec, io);
  return 0;
}

type BenchUnet = ReturnType<typeof resolveBenchUnet>;

// What a bench run measures, from its flags.
interface BenchSettings {
  flags: BenchFlags;
  setting: ReturnType<typeof parseProviderSetting>;
  plan: ReturnType<typeof chooseExecutionProviders>;
  batches: number[];
  latent: number;
  timing: { warmup: number; runs: number; signal: AbortSignal };
  samplePrec: Precision[];
  trainPrec: Precision[];
  trainTimesteps: number[];
  attentions: AttentionVariant[];
  profileDir?: string;
  epOptions: ProviderOptions;
  cacheDir: string;
}

function benchSettings(flags: BenchFlags, io: CliIO): BenchSettings {
  const setting = parseProviderSetting(flags.ep ?? 'auto');
  const plan = chooseExecutionProviders(setting, process.platform, listBackends(ort.listSupportedBackends()));
  // a benchmark on an explicitly chosen provider must not quietly measure the CPU instead
  if (setting !== 'auto' && setting !== 'cpu') plan.candidates = plan.candidates.filter((ep) => ep !== 'cpu');
  if (!plan.candidates.length) throw new Error(`--ep ${setting} is not available here: ${plan.skipped.map((s) => s.reason).join('; ')}`);
  const batches = list(flags.batch, '2,16').map(Number);
  const latent = flags.latent ?? 64;
  const timing = { warmup: flags.warmup ?? 2, runs: flags.runs ?? flags.steps ?? 10, signal: io.signal };
  const samplePrec = flags.fp16 ? ['fp16' as const] : precisions(list(flags.precision, 'fp32'), 'precision');
  const trainPrec = precisions(list(flags['train-precision'], flags.fp16 ? 'fp16' : 'fp32'), 'train-precision');
  const trainTimesteps = list(flags['train-timesteps'], '1').map(Number);
  for (const k of trainTimesteps) if (!Number.isInteger(k) || k < 1) throw new Error(`--train-timesteps: '${k}' is not a positive integer (timesteps per graph run, e.g. 1,2,4)`);
  const attentions = list(flags.attention, 'decomposed') as AttentionVariant[];
  for (const a of attentions) if (!ATTENTION_VARIANTS.includes(a)) throw new Error(`--attention: '${a}' is not one of ${ATTENTION_VARIANTS.join(', ')}`);
  const profileDir = flags.profile;
  const epOptions: ProviderOptions = flags.webgpu === undefined ? {} : { webgpu: parseProviderOptions(flags.webgpu, '--webgpu') };
  const cacheDir = flags.cache ?? path.join(os.tmpdir(), 'ddpo-bench');
  return { flags, setting, plan, batches, latent, timing, samplePrec, trainPrec, trainTimesteps, attentions, profileDir, epOptions, cacheDir };
}

// What a bench run measured so far; save() rewrites --out, so an interrupted run keeps it.
interface BenchRecord {
  result: Record<string, unknown>;
  sample: UnetTiming[];
  train: TrainTiming[];
  profiles: Record<string, ProfileSummary>;
  errors: string[];
  memory: Record<string, number | undefined>;
  save(): void;
}

function benchRecord(mode: string, s: BenchSettings, gpuName: string | undefined, gpuMem: GpuMemorySampler | undefined): BenchRecord {
  const result: Record<string, unknown> = {
    tool: 'ddpo bench', mode, date: new Date().toISOString(),
    device: { platform: `${process.platform}-${process.arch}`, cpu: os.cpus()[0]?.model, cpus: os.cpus().length, gpu: gpuName, ort: (ort.env as { versions?: Record<string, string> }).versions?.common },
    setting: s.setting, candidates: s.plan.candidates, skipped: s.plan.skipped, latent: s.latent, epOptions: s.epOptions,
  };
  const rec: BenchRecord = {
    result, sample: [], train: [], profiles: {}, errors: [], memory: {},
    save: () => {
      const out = s.flags.out;
      if (out === undefined) return;
      rec.memory.gpuBaselineMiB = gpuMem?.peek()?.baselineMiB;
      fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
      atomicWriteFileSync(out, JSON.stringify({ ...result, sample: rec.sample, train: rec.train, memory: rec.memory, profiles: rec.profiles }, null, 2) + '\n');
    },
  };
  result.errors = rec.errors;
  return rec;
}

// UNet evaluations per second for each precision, batch and attention variant; the DDIM step graph; node placement.
async function benchSampling(s: BenchSettings, unet: BenchUnet, rec: BenchRecord, gpuMem: GpuMemorySampler | undefined, io: CliIO): Promise<void> {
  resetPeakRss();
  // batch before attention variant: the small batch's variants come first, should a big batch exhaust the GPU
  for (const precision of s.samplePrec) {
    for (const batch of s.batches) {
      for (const attention of s.attentions) await benchSampleVariant(s, unet, rec, io, precision, batch, attention);
    }
  }
  const ep = rec.sample[0]?.ep ?? s.plan.candidates[0];
  if (!s.flags['no-ddim']) {
    const kb = Math.max(...s.batches.map((b) => Math.max(1, Math.floor(b / 2))));
    const stepMs = await benchDdimStep(kb, s.latent, ep, { ...s.timing, epOptions: s.epOptions });
    rec.result.ddimStep = { batch: kb, ep, ms: stepMs };
    io.out(`DDIM step graph (CFG, ${kb} images) on ${ep}: ${stepMs.toFixed(2)} ms`);
  }
  rec.memory.samplePeakRssGiB = peakRssBytes() / 2 ** 30;
  rec.memory.samplePeakGpuMiB = gpuMem?.peek()?.peakMiB;
  if (s.flags.placement) {
    const p = await probeNodePlacement(unet.file(s.samplePrec[0]), ep, { freeDimensionOverrides: unetDimOverrides(unet.model(), s.batches[0], s.latent) });
    rec.result.placement = p;
    io.out(`node placement (${s.samplePrec[0]}): ${describePlacement(p)}`);
  }
}

// One sampling variant timed (and, for the first batch under --profile, profiled per op).
async function benchSampleVariant(s: BenchSettings, unet: BenchUnet, rec: BenchRecord, io: CliIO, precision: Precision, batch: number, attention: AttentionVariant): Promise<void> {
  const label = `${precision} ${attention === 'decomposed' ? '' : `${attention} `}batch ${batch}`;
  io.progress(`UNet ${label}…`);
  let r: UnetTiming;
  try {
    r = await benchUnetEval(unet, precision, batch, s.latent, s.plan.candidates, { ...s.timing, attention, epOptions: s.epOptions });
  } catch (e) {
    // one variant failing (an op the provider lacks) must not lose the others' numbers
    io.out(`UNet forward ${label}: FAILED: ${(e as Error).message.split('\n')[0]}`);
    rec.errors.push(`${label}: ${(e as Error).message}`);
    rec.save();
    return;
  }
  for (const f of r.failures) io.out(`note: ${f.ep} failed: ${f.error}`);
  rec.sample.push(r);
  rec.save();
  io.out(`UNet forward ${label} on ${r.ep}: ${r.msPerEval.toFixed(1)} ms/eval, ${r.evalsPerSec.toFixed(2)} evals/s, session ${(r.sessionMs / 1000).toFixed(1)} s`);
  if (s.profileDir && batch === s.batches[0]) {
    const key = `sample-${precision}-${attention}-b${batch}`;
    const file = unet.file(precision, { attention, batch, latent: s.latent });
    rec.profiles[key] = await profileModel(file, r.ep, { graphOptimizationLevel: 'all', logSeverityLevel: 3, executionProviders: providerList(r.ep, s.epOptions) },
      unetFeeds(unet.model(), batch, s.latent), 2, s.profileDir, key);
    rec.save();
    io.out(`profile ${key}: ${renderProfile(rec.profiles[key])}`);
  }
}

// One DDPO LoRA train step per --train-timesteps K and --train-precision, with peak memory.
async function benchTraining(s: BenchSettings, unet: BenchUnet, rec: BenchRecord, gpuMem: GpuMemorySampler | undefined, io: CliIO): Promise<void> {
  // one graph per K (the graph's batch), shared by both precisions
  for (const K of s.trainTimesteps) {
    const graph = buildDdpoTrainGraph(unet, s.latent, K, s.flags['no-recompute'] ? Infinity : undefined);
    const rc = graph.recomputed;
    io.out(rc.tensors ? `training graph recomputes ${rc.tensors} attention probabilities in the backward (${(rc.elements / 2 ** 30).toFixed(2)} G values not kept, ${rc.nodes} nodes)` : 'training graph keeps every attention probability for the backward');
    for (const precision of s.trainPrec) {
      const label = trainLabel(precision, K, graph.attention), key = label.replace(/-/g, '_');
      resetPeakRss();
      gpuMem?.resetPeak();
      io.progress(`DDPO train step ${precision}${K > 1 ? `, ${K} timesteps per run` : ''}…`);
      const r = await benchTrainStep(unet, graph, s.plan.candidates, { ...s.timing, precision, cacheDir: s.cacheDir, log: io.progress, profileDir: s.profileDir, epOptions: s.epOptions });
      if (r.profile) { rec.profiles[label] = r.profile; io.out(`profile ${label}: ${renderProfile(r.profile)}`); }
      for (const f of r.failures) io.out(`note: ${f.ep} failed: ${f.error}`);
      rec.train.push(r);
      rec.memory[`${key}_PeakRssGiB`] = peakRssBytes() / 2 ** 30;
      rec.memory[`${key}_PeakGpuMiB`] = gpuMem?.peek()?.peakMiB;
      rec.save();
      io.out(`DDPO LoRA train step ${precision} (batch 1${K > 1 ? ` x ${K} timesteps per run` : ''}, CFG) on ${r.ep}: ${r.stepMs.toFixed(1)} ms (run ${r.runMs.toFixed(1)} + AdamW ${r.adamwMs.toFixed(2)})` +
        `${K > 1 ? `, ${r.msPerTimestep.toFixed(1)} ms per timestep` : ''}; graph build ${(r.buildMs / 1000).toFixed(1)} s (${r.nodes} nodes), session ${(r.sessionMs / 1000).toFixed(1)} s`);
    }
  }
}

// Ratios of our times against anchor_torch.py's last JSON line (same GPU).
function compareAnchor(file: string, rec: BenchRecord, io: CliIO): void {
  const line = fs.readFileSync(file, 'utf8').trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) { io.err(`${file} holds no JSON line from anchor_torch.py; no comparison`); return; }
  const anchor = JSON.parse(line);
  const ours = { ...rec.result, sample: rec.sample, train: rec.train, memory: rec.memory };
  io.out(renderComparison(compareWithAnchor(ours, anchor), ours, anchor));
}

/** The summary table printed after a run. */
export function renderTable(sample: UnetTiming[], train: TrainTiming[], memory: Record<string, number | undefined>): string {
  const rows: string[][] = [['what', 'ep', 'precision', 'batch', 'ms', 'per second', 'ms per timestep']];
  for (const s of sample) rows.push([`UNet forward${s.attention && s.attention !== 'decomposed' ? ` (${s.attention})` : ''}`, s.ep, s.precision, String(s.batch), s.msPerEval.toFixed(1), `${s.evalsPerSec.toFixed(2)} evals`, '']);
  // a train step of K timesteps per run: batch "1 x K t", the UNet on 2K; per second counts sample-timesteps
  for (const t of train) {
    const k = t.timestepsPerRun;
    rows.push(['DDPO LoRA train step', t.ep, t.precision, k > 1 ? `1 x ${k} t (CFG: ${2 * k})` : '1 (CFG: 2)', t.stepMs.toFixed(1), `${(1000 / t.msPerTimestep).toFixed(2)} timesteps`, t.msPerTimestep.toFixed(1)]);
  }
  for (const t of train) rows.push(['training graph build', 'host', t.precision, t.timestepsPerRun > 1 ? `1 x ${t.timestepsPerRun} t` : '', t.buildMs.toFixed(0), '', '']);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd());
  lines.splice(1, 0, w.map((n) => '-'.repeat(n)).join('  '));
  const mem = Object.entries(memory).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${k.endsWith('GiB') ? v!.toFixed(2) : v!.toFixed(0)}`);
  return [...lines, mem.length ? `memory: ${mem.join(', ')}` : ''].join('\n');
}

const make = (mode: 'sample' | 'train' | 'all', summary: string): CliCommand => defineCommand({
  path: ['bench', mode], summary, flags: FLAGS, usage: `ddpo bench ${mode} ${OPTIONS}`, run: ({ flags }, io) => runBench(mode, flags, io),
});

/** `ddpo bench sample`, `ddpo bench train` and `ddpo bench all`. */
export const benchCommands: CliCommand[] = [
  make('sample', 'Measure UNet throughput (evals/s) on static-shape sessions'),
  make('train', 'Measure one DDPO LoRA train step and the training-graph build time'),
  make('all', 'Sampling and training benchmarks with peak memory, as a table and JSON'),
];
