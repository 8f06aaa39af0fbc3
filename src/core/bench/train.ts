/**
 * One DDPO LoRA train step (batch 1 with CFG, so the UNet runs on 2) as PyTorch's DDPO trainers do it: time and build cost;
 * optionally K of the sample's timesteps in one graph run (train_timesteps_per_run; the UNet runs on 2K).
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Model, cloneModel, numel } from '../onnx/ir';
import { saveModel } from '../onnx/proto';
import { specialize } from '../onnx/specialize';
import { buildGradientGraph, lossSeedOf } from '../autodiff/gradient';
import { RECOMPUTE_ATTENTION_DEFAULT, type RecomputeReport } from '../autodiff/recompute';
import { InjectedLora, injectLora, initLoraWeights, loraFeeds } from '../train/lora';
import { ddpoObjective } from '../train/objective';
import { loraHalfIo } from '../train/session';
import { tensorToFloat32 } from '../runtime/ortModel';
import { isDdpoLossNode } from '../train/losses';
import { toOrtTensor } from '../runtime/ortRun';
import { AdamW } from '../train/adamw';
import { GaussianRng } from '../diffusion/rng';
import { BenchUnet } from './unet';
import { unetDimOverrides } from '../diffusion/unetRoles';
import { TimingOptions, median, timeRuns } from './sample';
import { ProviderOptions, openWithFallback, providerList, type ExecutionProvider } from '../runtime/providers';
import { toFloat16 } from '../onnx/fp16';
import { ProfileSummary, profileModel } from '../runtime/profile';

/** What one train step costs. */
export interface TrainTiming {
  precision: 'fp32' | 'fp16';
  ep: ExecutionProvider;
  latent: number;
  /** Samples per step; the UNet runs on twice as many (CFG) per timestep. */
  batch: number;
  /** Whether the backward recomputes large attention probabilities (default) or keeps them (--no-recompute), and how many it recomputes. */
  attention: 'recompute' | 'keep';
  recomputedAttention: number;
  /** Timesteps of each sample per graph run (train_timesteps_per_run): the graph's batch is batch x this. */
  timestepsPerRun: number;
  /** stepMs / timestepsPerRun: the cost of one sample-timestep, what a one-timestep step (and PyTorch's) costs. */
  msPerTimestep: number;
  /** Graph build: shape specialisation plus the gradient graph. */
  specializeMs: number;
  gradientMs: number;
  buildMs: number;
  nodes: number;
  saveMs: number;
  sessionMs: number;
  /** Median forward+backward session run. */
  runMs: number;
  /** Host AdamW update of the LoRA weights. */
  adamwMs: number;
  /** runMs + adamwMs + feeding: one graph run; at one timestep per run, the step PyTorch's anchor measures. */
  stepMs: number;
  loraParameters: number;
  lossScale: number;
  failures: { ep: string; error: string }[];
  profile?: ProfileSummary;
}

/** Options of {@link benchTrainStep}. */
export interface TrainBenchOptions extends TimingOptions {
  precision: 'fp32' | 'fp16';
  cacheDir: string;
  /** Loss scale for fp16 gradients (the gradient seed); gradients are divided by it before AdamW. */
  lossScale?: number;
  log?: (line: string) => void;
  /** Also profile one step per op type (another session), raw profile gzipped here. */
  profileDir?: string;
  epOptions?: ProviderOptions;
}

/** The DDPO LoRA (r=4 on to_q/k/v/out) training graph of a UNet at one latent size, built once for every precision. */
export interface DdpoTrainGraph {
  model: Model;
  injected: InjectedLora;
  latent: number;
  /** Items per run: samples x timesteps per run (the UNet runs on twice as many). */
  batch: number;
  specializeMs: number;
  gradientMs: number;
  /** Attention probabilities the backward recomputes instead of keeping (none when recomputation is off). */
  recomputed: RecomputeReport;
  /** 'keep' when recomputation was switched off (bench --no-recompute), whatever the size. */
  attention: 'recompute' | 'keep';
}

/** Injects LoRA, appends the DDPO objective, specializes to `batch` items (1 sample x K timesteps: K) at `latent` and builds the gradient graph. */
export function buildDdpoTrainGraph(unet: BenchUnet, latent: number, batch = 1, recomputeAttention: number = RECOMPUTE_ATTENTION_DEFAULT): DdpoTrainGraph {
  const forward = unet.model();
  const injected = injectLora(forward, LORA);
  const withLoss = ddpoObjective(injected.model, { advClipMax: 5 });
  const wrt = injected.adapters.flatMap((a) => [a.inputA, a.inputB]);
  let t = performance.now();
  const spec = specialize(withLoss, { dims: unetDimOverrides(forward, batch, latent), preserve: new Set(wrt) });
  const specializeMs = performance.now() - t;
  t = performance.now();
  const { model, recomputed } = buildGradientGraph(spec.model, { shapes: spec.shapes, wrt, loss: 'loss', keepForwardOutputs: true, recomputeAttention });
  return {
    model, injected, latent, batch, specializeMs, gradientMs: performance.now() - t,
    recomputed: recomputed ?? { tensors: 0, elements: 0, nodes: 0 }, attention: Number.isFinite(recomputeAttention) ? 'recompute' : 'keep',
  };
}

const LORA = { rank: 4, alpha: 4 };

/** `train-fp16`, or `train-fp16-k4` for 4 timesteps per run: names a measurement's profile and memory keys. */
export function trainLabel(precision: 'fp32' | 'fp16', timestepsPerRun: number, attention: 'recompute' | 'keep' = 'recompute'): string {
  return `train-${precision}${timestepsPerRun > 1 ? `-k${timestepsPerRun}` : ''}${attention === 'keep' ? '-keep' : ''}`;
}

/** Opens the training graph in `opts.precision` on the first provider that works and times steps (session run + AdamW). */
export async function benchTrainStep(unet: BenchUnet, graph: DdpoTrainGraph, candidates: ExecutionProvider[], opts: TrainBenchOptions): Promise<TrainTiming> {
  const { injected, latent, specializeMs, gradientMs } = graph;
  const K = graph.batch;
  const lora = LORA;
  let model = graph.model;
  const lossScale = opts.lossScale ?? (opts.precision === 'fp16' ? 1024 : 1);
  if (lossScale !== 1) model = withLossSeed(model, lossScale);
  // fp16: the UNet and its backward in half precision, the DDPO loss (log-probs of 16K-element means, exp) in float32;
  // LoRA weights stay float32 on the host (master weights), cross into the graph as float16 and their gradients come
  // back as float16, converted on the host each step, as the training session does.
  const loraNames = new Set(injected.adapters.flatMap((a) => [a.inputA, a.inputB]));
  if (opts.precision === 'fp16') model = toFloat16(model, { keepFp32Nodes: isDdpoLossNode, halfIo: loraHalfIo([...loraNames]) }).model;
  let t = performance.now();
  const file = path.join(opts.cacheDir, unet.name, `${trainLabel(opts.precision, K, graph.attention)}-${latent}`, 'model.onnx');
  // rebuilt on every run and loaded at once: scratch, so the timing stays the encode and write alone
  saveModel(model, file, { externalData: 'model.onnx_data', scratch: true });
  const saveMs = performance.now() - t;
  opts.log?.(`training graph: ${model.graph.nodes.length} nodes, built in ${((specializeMs + gradientMs) / 1000).toFixed(1)} s, saved in ${(saveMs / 1000).toFixed(1)} s`);
  t = performance.now();
  // warning level: onnxruntime then says on stderr when it placed nodes on the CPU instead of the GPU provider
  const opened = await openWithFallback(file, candidates, (ep) => ({ graphOptimizationLevel: 'all', logSeverityLevel: 2, executionProviders: providerList(ep, opts.epOptions) }));
  const sessionMs = performance.now() - t;
  const weights = initLoraWeights(injected.adapters, lora.rank, lora.alpha, 0);
  const params = new Map([...loraFeeds(injected.adapters, weights)].map(([k, v]) => [k, v.data]));
  const feeds = trainFeeds(model, loraFeeds(injected.adapters, weights));
  let timing: Omit<TrainTiming, 'profile'>;
  try {
    const adam = new AdamW({ lr: 3e-4 });
    let adamwTotal = 0;
    const loraInfo = model.graph.inputs.filter((v) => loraNames.has(v.name));
    const step = async () => {
      // the current weights, converted as the training session converts them (float16 inputs: on the host)
      for (const info of loraInfo) feeds[info.name] = toOrtTensor(info, { dims: feeds[info.name].dims as number[], data: params.get(info.name)! });
      const out = await opened.session.run(feeds);
      const a = performance.now();
      const grads = new Map<string, Float32Array>();
      for (const k of params.keys()) {
        const g = tensorToFloat32(out[`${k}_grad`]);
        if (lossScale !== 1) for (let i = 0; i < g.length; i++) g[i] /= lossScale;
        grads.set(k, g);
      }
      adam.update(params, grads);
      adamwTotal += performance.now() - a;
    };
    const times = await timeRuns(step, opts);
    const adamwMs = adamwTotal / (opts.warmup + opts.runs);
    const stepMs = median(times);
    timing = {
      precision: opts.precision, ep: opened.ep, latent, batch: 1, timestepsPerRun: K, msPerTimestep: stepMs / K,
      attention: graph.attention, recomputedAttention: graph.recomputed.tensors, specializeMs, gradientMs, buildMs: specializeMs + gradientMs,
      nodes: model.graph.nodes.length, saveMs, sessionMs, runMs: stepMs - adamwMs, adamwMs, stepMs,
      loraParameters: [...params.values()].reduce((n, p) => n + p.length, 0), lossScale, failures: opened.failures,
    };
  } finally {
    await opened.session.release();
  }
  // a second session, opened after the timed one is gone: profiling adds timestamp work to every kernel
  const profile = opts.profileDir
    ? await profileModel(file, timing.ep, { graphOptimizationLevel: 'all', logSeverityLevel: 3, executionProviders: providerList(timing.ep, opts.epOptions) }, feeds, 1, opts.profileDir, trainLabel(opts.precision, K, graph.attention))
    : undefined;
  return { ...timing, profile };
}

// The gradient seed d loss/d loss = 1 is an initializer; scaling it scales every gradient (loss scaling).
function withLossSeed(model: Model, scale: number): Model {
  const seed = lossSeedOf(model);
  const m = cloneModel(model);
  m.graph.initializers.set(seed.name, { ...seed, data: new Float32Array(seed.data.length).fill(scale) });
  return m;
}

// Plausible DDPO inputs: a mid-trajectory step (ᾱ 0.3 → 0.35, eta 1, guidance 5); cost does not depend on the values.
function trainFeeds(model: Model, lora: Map<string, { dims: number[]; data: Float32Array }>): Record<string, ort.Tensor> {
  const values: Record<string, number> = { old_log_prob: 0, advantages: 1, alpha_prod_t: 0.3, alpha_prod_t_prev: 0.35, eta: 1, guidance_scale: 5, timestep: 500, clip_range: 1e-4 };
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 10;
  for (const info of model.graph.inputs) {
    if (model.graph.initializers.has(info.name)) continue;
    const given = lora.get(info.name);
    if (given) { feeds[info.name] = toOrtTensor(info, given); continue; }
    const dims = (info.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    const n = numel(dims);
    const data = info.name in values ? new Float32Array(n).fill(values[info.name]) : new GaussianRng(seed++).fill(new Float32Array(n));
    feeds[info.name] = toOrtTensor(info, { dims, data });
  }
  return feeds;
}
