/**
 * The latents a generated pair's images were decoded from, kept beside them (`samples/<pairId>/latents.safetensors`,
 * one tensor per image named by its file stem: `a`, `b`), so Diffusion-DPO can train on the rated images of a model
 * without a VAE encoder. Scaled as the UNet sees them (before the decoder's division by the scaling factor).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeSafetensors, f32, readSafetensors, toFloat32 } from '../safetensors';
import { resolveInside } from '../fsutil';

/** File name of a pair folder's latents. */
export const PAIR_LATENTS_FILE = 'latents.safetensors';

/** One image's latent `[C, h, w]`. */
export interface ImageLatent {
  shape: number[];
  data: Float32Array;
}

/** The latents file's bytes: one float32 tensor per image, keyed by the image's file stem. */
export function encodePairLatents(latents: Record<string, ImageLatent>): Uint8Array {
  const tensors = Object.fromEntries(Object.entries(latents).map(([k, l]) => [k, f32(l.shape, l.data)]));
  return encodeSafetensors(tensors, { format: 'ddpo-pair-latents', scaled: 'unet' });
}

/** Where an image's latent is stored: the latents file of its folder and the tensor named by its stem. */
export function latentLocation(imagePath: string): { file: string; key: string } {
  return { file: path.join(path.dirname(imagePath), PAIR_LATENTS_FILE), key: path.basename(imagePath, path.extname(imagePath)) };
}

/** Reads stored latents of images, each file once; an image without one gets the reason instead. */
export class StoredLatents {
  private readonly files = new Map<string, Map<string, ImageLatent> | string>();

  constructor(private readonly experimentDir: string) {}

  /** The latent of an experiment-relative image path, or why there is none. */
  of(imageRel: string): ImageLatent | string {
    const { file, key } = latentLocation(resolveInside(this.experimentDir, imageRel));
    let read = this.files.get(file);
    if (read === undefined) {
      read = readLatentsFile(file);
      this.files.set(file, read);
    }
    if (typeof read === 'string') return read;
    return read.get(key) ?? `${path.relative(this.experimentDir, file)} has no latent "${key}"`;
  }
}

function readLatentsFile(file: string): Map<string, ImageLatent> | string {
  if (!fs.existsSync(file)) return `no ${PAIR_LATENTS_FILE} beside it (pairs generated before latents were stored)`;
  try {
    const out = new Map<string, ImageLatent>();
    for (const [k, t] of readSafetensors(file)) out.set(k, { shape: t.shape, data: toFloat32(t) });
    return out;
  } catch (e) {
    return `${file} is unreadable (${(e as Error).message})`;
  }
}
