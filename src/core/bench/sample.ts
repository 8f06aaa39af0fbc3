/** Sampling speed: UNet evaluations per second on static-shape sessions, and the cost of the DDIM step graph. */
import * as ort from 'onnxruntime-node';
import { DataType, Model } from '../onnx/ir';
import { encodeModel } from '../onnx/proto';
import { unetDimOverrides, unetRoles, sdxlTimeIds } from '../diffusion/unetRoles';
import { buildDdimStepGraph } from '../diffusion/ddimGraph';
import { GaussianRng } from '../diffusion/rng';
import { AttentionVariant, BenchUnet } from './unet';
import { ProviderOptions, openWithFallback, providerList, type ExecutionProvider } from '../runtime/providers';

/** Timing settings shared by the benchmarks. */
export interface TimingOptions {
  warmup: number;
  runs: number;
  signal?: AbortSignal;
}

/** One UNet configuration's speed. */
export interface UnetTiming {
  precision: 'fp32' | 'fp16';
  attention: AttentionVariant;
  batch: number;
  latent: number;
  ep: ExecutionProvider;
  sessionMs: number;
  /** Median wall time of one run with inputs from and outputs to host memory. */
  msPerEval: number;
  msMin: number;
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
export async function benchUnetEval(unet: BenchUnet, precision: 'fp32' | 'fp16', batch: number, latent: number, candidates: ExecutionProvider[],
  opts: TimingOptions & { attention?: AttentionVariant; epOptions?: ProviderOptions }): Promise<UnetTiming> {
  const attention = opts.attention ?? 'decomposed';
  const model = unet.model();
  const overrides = unetDimOverrides(model, batch, latent);
  const file = unet.file(precision, { attention, batch, latent });
  const t0 = performance.now();
  // Host I/O: onnxruntime-node 1.30 aborts the process (an uncaught C++ throw) when a WebGPU session asks for
  // gpu-buffer outputs, so outputs come back to host memory; at batch 2 that is 128 KB per evaluation.
  const base: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', freeDimensionOverrides: overrides, logSeverityLevel: 3 };
  const opened = await openWithFallback(file, candidates, (ep) => ({ ...base, executionProviders: providerList(ep, opts.epOptions) }));
  const sessionMs = performance.now() - t0;
  const feeds = unetFeeds(model, batch, latent);
  const s = opened.session;
  const output = unetRoles(model).output.name;
  try {
    const times = await timeRuns(() => s.run(feeds, [output]), opts);
    const ms = median(times);
    return {
      precision, attention, batch, latent, ep: opened.ep, sessionMs, msPerEval: ms, msMin: Math.min(...times),
      evalsPerSec: (batch * 1000) / ms, failures: opened.failures,
    };
  } finally {
    await s.release();
  }
}

/** Random UNet inputs at `batch` and `latent` (timestep 500, 77 text tokens; SDXL's pooled text and size ids); cost does not depend on the values. */
export function unetFeeds(model: Model, batch: number, latent: number): Record<string, ort.Tensor> {
  const roles = unetRoles(model);
  const channels = Number(roles.sample.shape?.[1] ?? 4);
  const dim = Number(roles.encoderHiddenStates.shape?.[2] ?? 768);
  const ts = roles.timestep;
  const tDims = ts.shape?.length ? [batch] : [];
  return {
    [roles.sample.name]: randomTensor([batch, channels, latent, latent], 1),
    [ts.name]: ts.elemType === DataType.INT64
      ? new ort.Tensor('int64', new BigInt64Array(tDims.length ? batch : 1).fill(500n), tDims)
      : new ort.Tensor('float32', new Float32Array(tDims.length ? batch : 1).fill(500), tDims),
    [roles.encoderHiddenStates.name]: randomTensor([batch, 77, dim], 2),
    ...(roles.added ? {
      [roles.added.textEmbeds.name]: randomTensor([batch, Number(roles.added.textEmbeds.shape?.[1] ?? 1280)], 3),
      [roles.added.timeIds.name]: new ort.Tensor('float32', Float32Array.from({ length: 6 * batch }, (_, i) => sdxlTimeIds(latent, latent)[i % 6]), [batch, 6]),
    } : {}),
  };
}

/** Median milliseconds of one DDIM step graph run at `batch` with CFG (what the graph sampler adds per step). */
export async function benchDdimStep(batch: number, latent: number, ep: ExecutionProvider, opts: TimingOptions & { epOptions?: ProviderOptions }): Promise<number> {
  const s = await ort.InferenceSession.create(encodeModel(buildDdimStepGraph({ batch, channels: 4, height: latent, width: latent, cfg: true })), {
    executionProviders: providerList(ep, opts.epOptions), logSeverityLevel: 3,
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
