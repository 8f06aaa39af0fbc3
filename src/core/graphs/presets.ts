/** Ready-made configs: SD 1.5 and SD 2.x sizes for benchmarks, tiny ones for tests and the embedded demo model. */
import { ClipTextConfig } from './clipText';
import { UNetConfig } from './unet';
import { VaeDecoderConfig } from './vaeDecoder';

/** SD 1.5's UNet (860M parameters). */
export const SD15_UNET_CONFIG: UNetConfig = {
  sample_size: 64, in_channels: 4, out_channels: 4, layers_per_block: 2,
  block_out_channels: [320, 640, 1280, 1280],
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  cross_attention_dim: 768, attention_head_dim: 8, norm_num_groups: 32,
};

/** SD 2.x's UNet: per-block head counts, linear projections, 1024-wide text embeddings. */
export const SD2_UNET_CONFIG: UNetConfig = {
  ...SD15_UNET_CONFIG, sample_size: 96, cross_attention_dim: 1024, attention_head_dim: [5, 10, 20, 20], use_linear_projection: true,
};

/** SD 1.x's text encoder (openai/clip-vit-large-patch14 text tower). */
export const SD15_CLIP_TEXT_CONFIG: ClipTextConfig = {
  vocab_size: 49408, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12,
  max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, eos_token_id: 49407,
};

/** SD 1.x's VAE. */
export const SD15_VAE_CONFIG: VaeDecoderConfig = {
  block_out_channels: [128, 256, 512, 512], layers_per_block: 2, latent_channels: 4, out_channels: 3, norm_num_groups: 32, scaling_factor: 0.18215,
};

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
