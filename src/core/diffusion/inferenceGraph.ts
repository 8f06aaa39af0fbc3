/** A UNet rewritten for inference on a GPU provider: fused attention and float16 compute. */
import type { Model } from '../onnx/ir';
import { specialize } from '../onnx/specialize';
import { fuseAttention } from '../onnx/fuseAttention';
import { toFloat16 } from '../onnx/fp16';
import { unetDimOverrides, unetRoles, unetStatics } from './unetRoles';

/** The rewritten graph and what was done to it. */
export interface InferenceGraph {
  model: Model;
  /** Attention cores fused into one kernel each. */
  fusedAttention: number;
  /** The batch the graph was specialised to (exports compute their head reshapes at run time), if it was. */
  staticBatch?: number;
  /** Whether it computes in float16 (its `keep` inputs are then float16 too). */
  fp16: boolean;
}

/** How {@link inferenceGraph} rewrites a UNet. */
export interface InferenceGraphOptions {
  /** UNet batch, latent side (or [height, width]) and text length of the calls (used only where fusing needs static shapes). */
  batch: number;
  latent: number | readonly [number, number];
  sequence: number;
  fp16: boolean;
  /** Replace each attention core by one com.microsoft.MultiHeadAttention (default true). */
  fuse?: boolean;
  /** Float inputs kept as they are by specialisation and, under fp16, fed as float16 by the caller (LoRA weights). */
  keep?: ReadonlySet<string>;
}

/**
 * A UNet rewritten for inference on a GPU provider: attention cores fused as the graph stands when its head reshapes
 * are constants (our builder's graphs), else after specialising to the call shapes (PyTorch exports compute them
 * from Shape), then float16 compute with float32 I/O. `shapesOf` is the graph whose input dims name the symbols.
 */
export function inferenceGraph(model: Model, opts: InferenceGraphOptions, shapesOf: Model = model): InferenceGraph {
  const keep = opts.keep ?? new Set<string>();
  let fusedAttention = 0;
  let staticBatch: number | undefined;
  if (opts.fuse ?? true) {
    let r = fuseAttention(model);
    if (!r.fused) {
      const dims = unetDimOverrides(shapesOf, opts.batch, opts.latent, opts.sequence);
      r = fuseAttention(specialize(model, { dims, preserve: new Set(keep) }).model);
      // an export with a static batch keeps it; one specialised here takes the batch of the calls
      if (r.fused) staticBatch = unetStatics(unetRoles(shapesOf)).batch ?? opts.batch;
    }
    if (r.fused) { model = r.model; fusedAttention = r.fused; }
  }
  if (opts.fp16) model = toFloat16(model, { halfIo: (v) => keep.has(v) }).model;
  return { model, fusedAttention, staticBatch, fp16: opts.fp16 };
}
