/** Shared bits of the graph-builder tests: the fixture's configs and a one-call ORT runner. */
import * as ort from 'onnxruntime-node';
import { Model } from '../../../src/core/onnx/ir';
import { encodeModel } from '../../../src/core/onnx/proto';
import type { ClipTextConfig } from '../../../src/core/graphs/clipText';
import type { ClipVisionConfig } from '../../../src/core/graphs/clipVision';
import type { UNetConfig } from '../../../src/core/graphs/unet';
import type { VaeDecoderConfig } from '../../../src/core/graphs/vaeDecoder';

/** Runs a model once on CPU and returns its outputs by name. */
export async function runModel(model: Model, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all' });
  try { return await session.run(feeds); } finally { await session.release(); }
}

/** Max |a - b| over max |b|. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let mx = 0;
  let md = 0;
  for (let i = 0; i < b.length; i++) { mx = Math.max(mx, Math.abs(b[i])); md = Math.max(md, Math.abs(a[i] - b[i])); }
  return md / mx;
}

/** Deterministic pseudo-random floats in [-1, 1). */
export function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = (x >>> 0) / 2147483648 - 1; }
  return out;
}

export { ort };

/** The reference fixture's tiny UNet (blocks 32/64, 8 heads, cross-attention dim 32). */
export const TINY_UNET_CONFIG: UNetConfig = {
  sample_size: 16, in_channels: 4, out_channels: 4, layers_per_block: 1, block_out_channels: [32, 64],
  down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'], up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'],
  cross_attention_dim: 32, attention_head_dim: 8, norm_num_groups: 32,
};

/** The reference fixture's tiny CLIP text encoder (vocab 1000, width 32, 2 layers; bos 998, eos 999). */
export const TINY_CLIP_TEXT_CONFIG: ClipTextConfig = {
  vocab_size: 1000, hidden_size: 32, intermediate_size: 37, num_hidden_layers: 2, num_attention_heads: 4,
  max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, eos_token_id: 999,
};

/** The reference fixture's tiny VAE decoder (x2 upsampling). */
export const TINY_VAE_CONFIG: VaeDecoderConfig = {
  block_out_channels: [32, 64], layers_per_block: 1, latent_channels: 4, out_channels: 3, norm_num_groups: 32, scaling_factor: 0.18215,
};

/** The reference CLIP vision fixture's tower (its config.json: 32 px, patch 4, width 32, 2 layers, 4 heads, projection 16). */
export const TINY_CLIP_VISION_CONFIG: ClipVisionConfig = {
  image_size: 32, patch_size: 4, num_channels: 3, hidden_size: 32, intermediate_size: 37, num_hidden_layers: 2, num_attention_heads: 4,
  projection_dim: 16, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
};
