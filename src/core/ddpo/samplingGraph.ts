/** The DDPO policy's sampling graph: the UNet with LoRA inputs, attention fused where it matches, in the provider's precision. */
import type { Model } from '../onnx/ir';
import { specialize } from '../onnx/specialize';
import { injectLora, type LoraAdapter, type LoraConfig } from '../train/lora';
import { fuseAttention } from '../runtime/fuseAttention';
import { toFloat16 } from '../runtime/fp16';
import { unetDimOverrides } from '../runtime/benchUnet';

/** How the sampling graph is built. */
export interface SamplingGraphOptions {
  lora: LoraConfig;
  /** UNet batch of every sampling call (2 × sample_batch_size with CFG), latent side and text length. */
  batch: number;
  latent: number;
  sequence: number;
  fp16: boolean;
  /** Replace each attention core by one com.microsoft.MultiHeadAttention (default true). */
  fuse?: boolean;
}

/** The built graph and what was done to it. */
export interface SamplingGraph {
  model: Model;
  adapters: LoraAdapter[];
  /** Attention cores fused into one kernel each. */
  fusedAttention: number;
  /** The batch the graph was specialised to (exports compute their head reshapes at run time), if it was. */
  staticBatch?: number;
}

/**
 * Injects the LoRA inputs and fuses the attention cores: as the graph stands when its head reshapes are constants
 * (our builder's graphs), else after specialising to the sampling shapes (PyTorch exports compute them from Shape).
 * Under fp16 the LoRA weights are float16 inputs the caller converts once per sampling batch, not Casts per call.
 */
export function buildSamplingGraph(forward: Model, opts: SamplingGraphOptions): SamplingGraph {
  const injected = injectLora(forward, opts.lora);
  const loraInputs = new Set(injected.adapters.flatMap((a) => [a.inputA, a.inputB]));
  let model = injected.model;
  let fusedAttention = 0;
  let staticBatch: number | undefined;
  if (opts.fuse ?? true) {
    let r = fuseAttention(model);
    if (!r.fused) {
      const dims = unetDimOverrides(forward, opts.batch, opts.latent, opts.sequence);
      r = fuseAttention(specialize(model, { dims, preserve: loraInputs }).model);
      if (r.fused) staticBatch = opts.batch;
    }
    if (r.fused) { model = r.model; fusedAttention = r.fused; }
  }
  if (opts.fp16) model = toFloat16(model, { halfIo: (v) => loraInputs.has(v) }).model;
  return { model, adapters: injected.adapters, fusedAttention, staticBatch };
}
