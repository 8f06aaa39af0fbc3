// The tiny model's VAE encoder graph (what Diffusion-DPO encodes rated images with, where a model folder has one):
// through the model-folder encoder it gives the latents the UNet sees, the host encoder's times the scaling factor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openVaeEncoder } from '../../../src/core/diffusion/vaeEncoder';
import type { ModelFolder } from '../../../src/core/models/modelFolder';
import { saveModel } from '../../../src/core/onnx/proto';
import { buildTinyVaeEncoder, encodeLatent, TINY_SCALING_FACTOR } from '../../../src/core/tiny/model';
import { mulberry32 } from '../../../src/core/random';

test('the tiny VAE encoder graph, opened from a model folder, gives the host encoder\'s latent times the scaling factor', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-vae-enc-')), 'model.onnx');
  saveModel(buildTinyVaeEncoder(), file);
  const enc = await openVaeEncoder({ vaeEncoder: file, vaeScalingFactor: TINY_SCALING_FACTOR } as ModelFolder, 4);
  assert.ok(enc);
  try {
    const rand = mulberry32(5);
    const images = [0, 1].map(() => ({ width: 32, height: 32, channels: 3 as const, data: Uint8Array.from({ length: 32 * 32 * 3 }, () => Math.floor(rand() * 256)) }));
    const latents = await enc.encode(images);
    for (const [k, img] of images.entries()) {
      const host = encodeLatent({ width: 32, height: 32, data: Float32Array.from(img.data, (v) => v / 255) });
      assert.equal(latents[k].length, 4 * 16 * 16);
      let worst = 0;
      host.forEach((v, i) => (worst = Math.max(worst, Math.abs(latents[k][i] - v * TINY_SCALING_FACTOR))));
      assert.ok(worst < 1e-5, `image ${k}: worst difference ${worst}`);
      assert.ok(latents[k].subarray(3 * 256).every((v) => v === 0), 'channel 3 is zero');
    }
  } finally {
    await enc.release();
  }
});
