/** SD 1.5's configs, for benchmarks and the script that builds an SD 1.5-sized model. */
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

/** SD 1.x's text encoder (openai/clip-vit-large-patch14 text tower). */
export const SD15_CLIP_TEXT_CONFIG: ClipTextConfig = {
  vocab_size: 49408, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12,
  max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, eos_token_id: 49407,
};

/** SD 1.x's VAE. */
export const SD15_VAE_CONFIG: VaeDecoderConfig = {
  block_out_channels: [128, 256, 512, 512], layers_per_block: 2, latent_channels: 4, out_channels: 3, norm_num_groups: 32, scaling_factor: 0.18215,
};

/** SDXL base's UNet (2.6B parameters): text_time added conditioning, 2 / 10 transformer blocks in the lower blocks. */
export const SDXL_UNET_CONFIG: UNetConfig = {
  sample_size: 128, in_channels: 4, out_channels: 4, layers_per_block: 2,
  block_out_channels: [320, 640, 1280],
  down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'],
  up_block_types: ['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'],
  cross_attention_dim: 2048, attention_head_dim: [5, 10, 20], use_linear_projection: true, transformer_layers_per_block: [1, 2, 10],
  addition_embed_type: 'text_time', addition_time_embed_dim: 256, projection_class_embeddings_input_dim: 2816, norm_num_groups: 32,
};

/** SDXL's topology in miniature (an attention-free first block, 1 and 2 transformer blocks, text_time conditioning). */
export const TINY_SDXL_UNET_CONFIG: UNetConfig = {
  sample_size: 16, in_channels: 4, out_channels: 4, layers_per_block: 2,
  block_out_channels: [32, 64],
  down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'],
  up_block_types: ['CrossAttnUpBlock2D', 'UpBlock2D'],
  cross_attention_dim: 64, attention_head_dim: [2, 4], use_linear_projection: true, transformer_layers_per_block: [1, 2],
  addition_embed_type: 'text_time', addition_time_embed_dim: 8, projection_class_embeddings_input_dim: 32 + 6 * 8, norm_num_groups: 8,
};
