// Generated rating pairs keep the latents their images were decoded from, so Diffusion-DPO can train on the rated
// images of a model without a VAE encoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { toRgbImages } from '../../../src/core/diffusion/generate';
import { StoredLatents } from '../../../src/core/experiment/pairLatents';
import { EXPERIMENT_FILE, newExperiment, serializeExperiment } from '../../../src/core/experiment/schema';
import { decodePng } from '../../../src/core/image/png';
import { generatePairsInto } from '../../../src/core/studio/generate';
import { listPairs } from '../../../src/core/studio/pairs';
import { needsTinyModel, tinyModelDir } from '../fixtures';

test('each generated pair stores the latents of its two images: decoded, they are the PNGs the rater sees', { skip: needsTinyModel() }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-pair-latents-'));
  fs.writeFileSync(path.join(dir, EXPERIMENT_FILE), serializeExperiment(newExperiment('exp', { prompts: ['a red circle'], settings: { steps: 2, imageSize: 32 } })));
  const pipe = await StableDiffusionPipeline.load(tinyModelDir);
  try {
    await generatePairsInto(dir, pipe, 1);
    const [pair] = listPairs(dir);
    const stored = new StoredLatents(dir);
    for (const img of [pair.a, pair.b]) {
      const l = stored.of(img);
      assert.ok(typeof l !== 'string', String(l));
      assert.deepEqual(l.shape, [4, 16, 16]);
      const dec = await pipe.decode(l.data, 1, 16, 16);
      const png = decodePng(fs.readFileSync(path.join(dir, img)));
      assert.deepEqual(toRgbImages(dec.data, 1, dec.height, dec.width)[0].data, png.data, `${img} is its stored latent decoded`);
    }
  } finally {
    await pipe.release();
  }
});
