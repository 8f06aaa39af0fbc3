/** The DDPO policy's sampling graph: the UNet with LoRA inputs, attention fused where it matches, in the provider's precision. */
import type { Model } from '../onnx/ir';
import { injectLora, type LoraAdapter, type LoraConfig } from '../train/lora';
import { inferenceGraph, type InferenceGraph, type InferenceGraphOptions } from '../diffusion/inferenceGraph';
import { standardUnet } from '../train/standardForm';

/** How the sampling graph is built: {@link InferenceGraphOptions} with the LoRA to inject. */
export interface SamplingGraphOptions extends Omit<InferenceGraphOptions, 'keep'> {
  lora: LoraConfig;
}

/** The built graph, what was done to it, and the LoRA adapters it takes. */
export interface SamplingGraph extends InferenceGraph {
  adapters: LoraAdapter[];
}

/**
 * Brings the export to its standard form (train/standardForm.ts), injects the LoRA inputs and applies {@link inferenceGraph}. Under fp16 the LoRA weights are float16 inputs the
 * caller converts once per sampling batch, not Casts per call.
 */
export function buildSamplingGraph(exported: Model, opts: SamplingGraphOptions): SamplingGraph {
  const forward = standardUnet(exported).model;
  const injected = injectLora(forward, opts.lora);
  const loraInputs = new Set(injected.adapters.flatMap((a) => [a.inputA, a.inputB]));
  return { ...inferenceGraph(injected.model, { ...opts, keep: loraInputs }, forward), adapters: injected.adapters };
}
