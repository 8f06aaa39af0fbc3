/** The embedded tiny model's fixed parts: UNet and scheduler configs, the pixel-space "VAE" (decoder and encoder graphs, and the encoder on the host). */
import { A, GraphBuilder } from '../onnx/builder';
import { DataType, emptyGraph, makeModel, Model } from '../onnx/ir';
import { UNetConfig } from '../graphs/unet';
import { RgbImage } from './scenes';
import { TINY_TEXT_DIM } from './textEncoder';

/** Image side in pixels and latent side (the decoder upsamples x2). */
export const TINY_IMAGE_SIZE = 32;
export const TINY_LATENT_SIZE = 16;

/** The UNet: 16x16x4 latents, blocks 32/64, cross-attention (to_q/to_k/to_v/to_out.0) at 8x8 and in the mid block. */
export const TINY_MODEL_UNET: UNetConfig = {
  sample_size: TINY_LATENT_SIZE, in_channels: 4, out_channels: 4, layers_per_block: 1, block_out_channels: [32, 64],
  down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'], up_block_types: ['CrossAttnUpBlock2D', 'UpBlock2D'],
  cross_attention_dim: TINY_TEXT_DIM, attention_head_dim: 4, norm_num_groups: 8,
};

/**
 * Latent scaling: latents are 2x2-average-pooled RGB in [-1, 1] (channels 0-2) and a zero 4th channel; the RGB
 * channels' standard deviation over the training scenes is about 0.69, so the UNet sees latents·1.45 with unit variance.
 */
export const TINY_SCALING_FACTOR = 1.45;

/** Image (HWC, [0, 1], side 2n) -> unscaled latent [4, n, n]: 2x2 mean of 2x-1 per RGB channel, channel 3 zero. */
export function encodeLatent(img: RgbImage, out: Float32Array = new Float32Array(4 * (img.width / 2) * (img.height / 2))): Float32Array {
  const w = img.width / 2, h = img.height / 2;
  const plane = w * h;
  out.fill(0);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) s += img.data[((2 * y + dy) * img.width + 2 * x + dx) * 3 + c];
      out[c * plane + y * w + x] = s / 2 - 1; // mean in [0,1] -> [-1,1]: 2·(s/4) - 1
    }
  }
  return out;
}

/**
 * The decoder as an ONNX graph like a VAE decoder's (`latent_sample [b,4,h,w]` -> `sample [b,3,2h,2w]`):
 * a fixed 1x1 `post_quant_conv` keeping channels 0-2, then a bilinear x2 `Resize`. It exactly inverts
 * {@link encodeLatent} up to the detail lost by pooling.
 */
export function buildTinyVaeDecoder(): Model {
  const g = emptyGraph('vae_decoder');
  const b = new GraphBuilder(g);
  const z = b.input('latent_sample', DataType.FLOAT, ['batch', 4, 'h', 'w']);
  const w = new Float32Array(12);
  for (let c = 0; c < 3; c++) w[c * 4 + c] = 1;
  const wName = b.initializer({ name: 'post_quant_conv.weight', dataType: DataType.FLOAT, dims: [3, 4, 1, 1], data: w }, true);
  const bName = b.initializer({ name: 'post_quant_conv.bias', dataType: DataType.FLOAT, dims: [3], data: new Float32Array(3) }, true);
  const rgb = b.within('post_quant_conv', () => b.op('Conv', [z, wName, bName], { kernel_shape: A.ints([1, 1]) }));
  b.within('decoder', () => b.op('Resize', [rgb, '', b.constF([1, 1, 2, 2])], {
    coordinate_transformation_mode: A.s('half_pixel'), mode: A.s('linear'),
  }, { outputs: ['sample'] }));
  g.outputs.push({ name: 'sample', elemType: DataType.FLOAT, shape: ['batch', 3, 'H', 'W'] });
  const model = makeModel(g, 17);
  // block_out_channels has two entries so readers infer the x2 pixel scale, as for a 2-block AutoencoderKL
  model.metadata = {
    source: 'ddpo-studio tiny model (fixed pooled-RGB decoder)',
    config: JSON.stringify({ latent_channels: 4, out_channels: 3, block_out_channels: [3, 3], sample_size: TINY_IMAGE_SIZE, scaling_factor: TINY_SCALING_FACTOR }),
  };
  return model;
}

/**
 * The encoder as an ONNX graph like a VAE encoder's (`sample [b,3,2h,2w]` in [-1, 1] -> `latent_sample [b,4,h,w]`,
 * before the scaling factor): a 2x2 average pool and a fixed 1x1 conv that keeps RGB in channels 0-2 and a zero
 * channel 3, exactly {@link encodeLatent}. Diffusion-DPO encodes the rated images with it.
 */
export function buildTinyVaeEncoder(): Model {
  const g = emptyGraph('vae_encoder');
  const b = new GraphBuilder(g);
  const x = b.input('sample', DataType.FLOAT, ['batch', 3, 'H', 'W']);
  const w = new Float32Array(12);
  for (let c = 0; c < 3; c++) w[c * 3 + c] = 1;
  const wName = b.initializer({ name: 'quant_conv.weight', dataType: DataType.FLOAT, dims: [4, 3, 1, 1], data: w }, true);
  const bName = b.initializer({ name: 'quant_conv.bias', dataType: DataType.FLOAT, dims: [4], data: new Float32Array(4) }, true);
  const pooled = b.within('encoder', () => b.op('AveragePool', [x], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]) }));
  b.within('quant_conv', () => b.op('Conv', [pooled, wName, bName], { kernel_shape: A.ints([1, 1]) }, { outputs: ['latent_sample'] }));
  g.outputs.push({ name: 'latent_sample', elemType: DataType.FLOAT, shape: ['batch', 4, 'h', 'w'] });
  const model = makeModel(g, 17);
  model.metadata = {
    source: 'ddpo-studio tiny model (fixed pooled-RGB encoder)',
    config: JSON.stringify({ latent_channels: 4, in_channels: 3, block_out_channels: [3, 3], sample_size: TINY_IMAGE_SIZE, scaling_factor: TINY_SCALING_FACTOR }),
  };
  return model;
}

/** DDIM with SD 1.x's scaled-linear betas over 1000 training steps. */
export const TINY_SCHEDULER_CONFIG: Record<string, unknown> = {
  _class_name: 'DDIMScheduler', num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear',
  clip_sample: false, set_alpha_to_one: false, steps_offset: 1, prediction_type: 'epsilon', timestep_spacing: 'leading',
};
