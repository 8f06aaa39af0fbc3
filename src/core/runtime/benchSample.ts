/** Sampling speed: UNet evaluations per second on static-shape sessions, and the cost of the DDIM step graph. */
import * as ort from 'onnxruntime-node';
import { DataType } from '../onnx/ir';
import { encodeModel } from '../onnx/proto';
import { unetRoles } from '../train/objective';
import { buildDdimStepGraph } from '../diffusion/ddimGraph';
import { GaussianRng } from '../diffusion/rng';
import type { ExecutionProvider } from '../models/ortModel';
import { BenchUnet, unetDimOverrides } from './benchUnet';
import { openWithFallback } from './providers';

/** Timing settings shared by the benchmarks. */
export interface TimingOptions {
  warmup: number;
  runs: number;
  signal?: AbortSignal;
}

/** One UNet configuration's speed. */
export interface UnetTiming {
  precision: 'fp32' | 'fp16';
  batch: number;
  latent: number;
  ep: ExecutionProvider;
  sessionMs: number;
  /** Median wall time of one run with inputs from and outputs to host memory. */
  msPerEval: number;
  msMin: number;
  /** Mean of back-to-back runs with the output left in a GPU buffer, synchronised once at the end (GPU providers only). */
  deviceMsPerEval?: number;
  evalsPerSec: number;
  failures: { ep: string; error: string }[];
}

/** Median of a list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Times `fn` after `warmup` calls; returns every run's milliseconds. */
export async function timeRuns(fn: () => Promise<unknown>, opts: TimingOptions): Promise<number[]> {
  for (let i = 0; i < opts.warmup; i++) { opts.signal?.throwIfAborted(); await fn(); }
  const out: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    opts.signal?.throwIfAborted();
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

function randomTensor(dims: number[], seed: number): ort.Tensor {
  return new ort.Tensor('float32', new GaussianRng(seed).fill(new Float32Array(dims.reduce((a, b) => a * b, 1))), dims);
}

/** Runs the UNet (`precision`, `batch`, latent `latent`) on the first provider of `candidates` that opens. */
export async function benchUnetEval(unet: BenchUnet, precision: 'fp32' | 'fp16', batch: number, latent: number, candidates: ExecutionProvider[], opts: TimingOptions): Promise<UnetTiming> {
  const model = unet.model();
  const roles = unetRoles(model);
  const channels = Number(roles.sample.shape?.[1] ?? 4);
  const dim = Number(roles.encoderHiddenStates.shape?.[2] ?? 768);
  const overrides = unetDimOverrides(model, batch, latent);
  const file = unet.file(precision);
  const t0 = performance.now();
  // On GPU providers the output stays in a GPU buffer: host timing downloads it (what a host loop pays), device
  // timing queues runs back to back and synchronises once, like torch.cuda.synchronize() after PyTorch's loop.
  const base: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', freeDimensionOverrides: overrides, logSeverityLevel: 3 };
  let opened;
  try {
    opened = await openWithFallback(file, candidates.slice(0, 1), (ep) => (ep === 'webgpu' || ep === 'cuda' ? { ...base, preferredOutputLocation: 'gpu-buffer' } : base));
  } catch {
    // a binding without gpu-buffer outputs for this provider still gets host-I/O timings
    opened = await openWithFallback(file, candidates, () => base);
  }
  const sessionMs = performance.now() - t0;
  const ts = roles.timestep;
  const tDims = ts.shape?.length ? [batch] : [];
  const feeds: Record<string, ort.Tensor> = {
    [roles.sample.name]: randomTensor([batch, channels, latent, latent], 1),
    [ts.name]: ts.elemType === DataType.INT64
      ? new ort.Tensor('int64', new BigInt64Array(tDims.length ? batch : 1).fill(500n), tDims)
      : new ort.Tensor('float32', new Float32Array(tDims.length ? batch : 1).fill(500), tDims),
    [roles.encoderHiddenStates.name]: randomTensor([batch, 77, dim], 2),
  };
  const s = opened.session;
  const output = roles.output.name;
  try {
    const times = await timeRuns(async () => { const y = (await s.run(feeds))[output]; if (y.location !== 'cpu') await y.getData(true); }, opts);
    let deviceMsPerEval: number | undefined;
    const first = (await s.run(feeds))[output];
    if (first.location !== 'cpu') {
      await first.getData(true);
      const t = performance.now();
      let last: ort.Tensor | undefined;
      for (let i = 0; i < opts.runs; i++) { last?.dispose(); last = (await s.run(feeds))[output]; }
      await last!.getData(true);
      deviceMsPerEval = (performance.now() - t) / opts.runs;
    }
    const ms = median(times);
    return {
      precision, batch, latent, ep: opened.ep, sessionMs, msPerEval: ms, msMin: Math.min(...times), deviceMsPerEval,
      evalsPerSec: (batch * 1000) / (deviceMsPerEval ?? ms), failures: opened.failures,
    };
  } finally {
    await s.release();
  }
}

/** Median milliseconds of one DDIM step graph run at `batch` with CFG (what the graph sampler adds per step). */
export async function benchDdimStep(batch: number, latent: number, ep: ExecutionProvider, opts: TimingOptions): Promise<number> {
  const s = await ort.InferenceSession.create(encodeModel(buildDdimStepGraph({ batch, channels: 4, height: latent, width: latent, cfg: true })), {
    executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'], logSeverityLevel: 3,
  });
  try {
    const lat = [batch, 4, latent, latent];
    const feeds = {
      sample: randomTensor(lat, 3), model_output: randomTensor([2 * batch, 4, latent, latent], 4), noise: randomTensor(lat, 5),
      coefficients: new ort.Tensor('float32', Float32Array.of(0.5, 0.8, 0.6, 0.7, 0.1, -1, 5, 50), [8]),
    };
    return median(await timeRuns(() => s.run(feeds), opts));
  } finally {
    await s.release();
  }
}
