/** A model folder's VAE encoder (`vae_encoder/`, optional in the diffusers layout): images to the latents the UNet sees. */
import type { RasterImage } from '../image/png';
import type { ModelFolder } from '../models/modelFolder';
import { OrtModel, tensorFor, tensorToFloat32 } from '../runtime/ortModel';
import type { SessionProviders } from '../runtime/sessionProviders';

/** Encodes images; one latent `[C, h, w]` per image, multiplied by the VAE's scaling factor. */
export interface VaeEncoder {
  encode(images: readonly RasterImage[]): Promise<Float32Array[]>;
  release(): Promise<void>;
}

/** Opens `vae_encoder/model.onnx` of the folder, or returns undefined when the folder has none. */
export async function openVaeEncoder(folder: ModelFolder, latentChannels: number, providers?: SessionProviders): Promise<VaeEncoder | undefined> {
  if (!folder.vaeEncoder) return undefined;
  const model = providers ? await OrtModel.open(folder.vaeEncoder, providers) : await OrtModel.load(folder.vaeEncoder);
  const input = model.input(['sample'], (s) => s.shape.length === 4);
  const output = model.output(['latent_sample', 'latent_parameters', 'latent_dist']);
  return {
    async encode(images) {
      const out: Float32Array[] = [];
      // one image at a time keeps the encoder's memory bounded at 512 px and up
      for (const img of images) {
        const res = await model.run({ [input.name]: tensorFor(input, imageToTensor(img), [1, 3, img.height, img.width]) });
        const t = res[output.name];
        out.push(latentOf(tensorToFloat32(t), t.dims, latentChannels, folder.vaeScalingFactor, folder.vaeEncoder!));
      }
      return out;
    },
    release: () => model.release(),
  };
}

// 8-bit pixels (HWC; gray repeated, alpha dropped) -> RGB CHW floats in [-1, 1], as diffusers' image processor normalises them.
function imageToTensor(img: RasterImage): Float32Array {
  const plane = img.width * img.height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) out[c * plane + i] = (img.data[i * img.channels + (img.channels < 3 ? 0 : c)] / 255) * 2 - 1;
  return out;
}

// The encoder's output for one image, scaled: a sampled latent (C channels) as is, or the posterior's parameters
// (2C channels: mean, then log-variance), of which the mean is taken.
function latentOf(data: Float32Array, dims: readonly number[], channels: number, scaling: number, file: string): Float32Array {
  const ch = dims[1];
  if (ch !== channels && ch !== 2 * channels) throw new Error(`${file} outputs ${ch} channels; the UNet takes ${channels} latent channels (expected ${channels}, or ${2 * channels} for mean and log-variance)`);
  const per = channels * dims[2] * dims[3];
  const out = new Float32Array(per);
  for (let i = 0; i < per; i++) out[i] = data[i] * scaling;
  return out;
}
