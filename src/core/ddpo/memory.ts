/** A memory estimate for a DDPO run, made before any session is built, so a too-large setting fails at once and by name. */
import * as os from 'node:os';
import { elemBytes, numel, type Model } from '../onnx/ir';
import type { TensorShape } from '../onnx/shapeUtil';
import { timestepsPerRun, type DdpoConfig } from './config';
import { OutOfMemoryError } from './guards';
import { RECOMPUTE_ATTENTION_DEFAULT } from '../autodiff/recompute';

/** Bytes a run is expected to need, and what they come from. */
export interface MemoryEstimate {
  /** UNet weights, in all the copies a run holds at its peak (see WEIGHT_COPIES). */
  weightBytes: number;
  /** Every intermediate tensor of the forward + loss graph at train_batch_size x train_timesteps_per_run items (kept for the backward pass; of the large attention probabilities, recomputed there, only one). */
  activationBytes: number;
  /** Training session: weights + activations x TRAIN_FACTOR. */
  trainingBytes: number;
  /** Sampling: weights + a UNet call on 2 x sample_batch_size latents. */
  samplingBytes: number;
  totalBytes: number;
}

// A training step grows the process by a share of the summed forward activations (onnxruntime reuses buffers in the
// backward pass), a sampling call by a smaller share of its batch's; both arenas stay allocated. The factors round the
// measured shares up, to warn early (docs/performance.md, "Memory of a DDPO run").
const TRAIN_FACTOR = 1.0;
const SAMPLE_FACTOR = 0.6;
// The UNet's weights at the peak, while the sessions are built: our graph's copy, the training session's and the
// sampling session's, and about one copy more that onnxruntime holds while it builds a session; measured, not derived
// (docs/performance.md, "Memory of a DDPO run").
const WEIGHT_COPIES = 4;

/** Sums the training graph's tensors; `forward` is the specialized forward + loss graph for train_batch_size x train_timesteps_per_run items. */
export function estimateDdpoMemory(forward: Model, shapes: Map<string, TensorShape>, c: DdpoConfig): MemoryEstimate {
  let weights = 0, activations = 0;
  for (const t of forward.graph.initializers.values()) weights += numel(t.dims) * elemBytes(t.dataType);
  const inits = forward.graph.initializers;
  const bytes = (v: string) => { const s = v && !inits.has(v) ? shapes.get(v) : undefined; return s ? numel(s.dims) * elemBytes(s.elemType) : 0; };
  // large attention scores and probabilities are recomputed in the backward pass (autodiff/recompute.ts), so only
  // one such pair is alive at a time instead of all of them
  const recomputed = new Set<string>();
  let largestPair = 0;
  for (const n of forward.graph.nodes) {
    const p = n.outputs[0];
    if (n.opType !== 'Softmax' || numel(shapes.get(p)?.dims ?? []) < RECOMPUTE_ATTENTION_DEFAULT) continue;
    recomputed.add(p).add(n.inputs[0]);
    largestPair = Math.max(largestPair, bytes(p) + bytes(n.inputs[0]));
  }
  for (const n of forward.graph.nodes) for (const o of n.outputs) if (!recomputed.has(o)) activations += bytes(o);
  activations += largestPair;
  const weightBytes = WEIGHT_COPIES * weights;
  const trainingBytes = weightBytes + TRAIN_FACTOR * activations;
  const samplingBytes = weightBytes + SAMPLE_FACTOR * activations * (c.sample_batch_size / (c.train_batch_size * timestepsPerRun(c)));
  return { weightBytes, activationBytes: activations, trainingBytes, samplingBytes, totalBytes: weightBytes + TRAIN_FACTOR * activations + (samplingBytes - weightBytes) };
}

/** Memory this process may still use: free memory (MemAvailable on Linux) plus what it already holds. */
export function availableMemory(): number {
  return os.freemem() + process.memoryUsage().rss;
}

/** Throws an OutOfMemoryError naming train_timesteps_per_run, train_batch_size, sample_batch_size and latent_size when the estimate exceeds `available`. */
export function checkMemory(est: MemoryEstimate, c: DdpoConfig, latentSize: number, available = availableMemory()): void {
  if (est.totalBytes <= available) return;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GB`;
  const k = timestepsPerRun(c);
  const err = k > 1 ? new OutOfMemoryError('train_timesteps_per_run', k, 'train', '') : new OutOfMemoryError('train_batch_size', c.train_batch_size, 'train', '');
  err.message = `Not enough memory for this DDPO run: it needs about ${gb(est.totalBytes)} (training graph ${gb(est.trainingBytes)} at ` +
    `train_batch_size ${c.train_batch_size}${k > 1 ? ` x train_timesteps_per_run ${k}` : ''}, sampling ${gb(est.samplingBytes)} at sample_batch_size ${c.sample_batch_size}, latent_size ${latentSize}) ` +
    `but only ${gb(available)} is available. Lower ${k > 1 ? 'train_timesteps_per_run (it changes only speed), ' : ''}train_batch_size (raise train_gradient_accumulation_steps to keep the effective batch), ` +
    'sample_batch_size (raise sample_num_batches_per_epoch to keep the samples per epoch) or latent_size in ddpo.json, or close other programs.';
  throw err;
}
