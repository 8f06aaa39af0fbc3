/** Training the tiny model with our own autodiff: the loss falls, and a run is reproducible from its seed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildUNet } from '../../../src/core/graphs/unet';
import { AdamW } from '../../../src/core/train/adamw';
import { createUNetTrainer, trainableWeights, withWeights } from '../../../src/core/tiny/trainGraph';
import { trainTinyModel } from '../../../src/core/tiny/train';
import { TINY_MODEL_UNET } from '../../../src/core/tiny/model';
import { mulberry32 } from '../../../src/core/random';

test('Adam steps on the gradient graph drive the noise-prediction loss down on a fixed batch', async () => {
  const unet = buildUNet({ ...TINY_MODEL_UNET, block_out_channels: [8, 16], norm_num_groups: 4 }, { seed: 1 });
  const trainer = await createUNetTrainer(unet, 2, 8, 5, 1);
  const r = mulberry32(2);
  const rnd = (n: number) => Float32Array.from({ length: n }, () => 2 * r() - 1);
  const feeds = {
    sample: { dims: [2, 4, 8, 8], data: rnd(512) }, timestep: { dims: [2], data: [10, 700] },
    context: { dims: [2, 5, 32], data: rnd(320) }, noise: { dims: [2, 4, 8, 8], data: rnd(512) },
  };
  const opt = new AdamW({ lr: 3e-3, weightDecay: 0 });
  const losses: number[] = [];
  for (let i = 0; i < 8; i++) {
    const { loss, grads } = await trainer.step(feeds);
    assert.equal(grads.size, trainableWeights(unet).length);
    losses.push(loss);
    opt.update(trainer.params, grads);
  }
  await trainer.release();
  assert.ok(losses[7] < 0.8 * losses[0], `losses ${losses.map((l) => l.toFixed(4)).join(' ')}`);
  // trained weights go back into a loadable UNet under the same names
  const trained = withWeights(unet, trainer.params);
  const name = trainableWeights(unet)[0];
  assert.deepEqual(trained.graph.initializers.get(name)!.data, trainer.params.get(name));
});

test('two runs with the same seed write the same UNet; another seed a different one', async () => {
  const dirs = [0, 0, 1].map(() => mkdtempSync(join(tmpdir(), 'tiny-train-')));
  try {
    const runs = [];
    for (const [i, seed] of [0, 0, 1].entries()) {
      runs.push(await trainTinyModel({ out: dirs[i], steps: 2, seed, batch: 2, lr: 1e-3, threads: 1, warmup: 1, log: () => {} }));
    }
    const unet = (i: number) => readFileSync(join(dirs[i], 'unet/model.onnx'));
    assert.ok(unet(0).equals(unet(1)), 'same seed, different weights');
    assert.ok(!unet(0).equals(unet(2)), 'different seeds, same weights');
    assert.deepEqual(runs[0].losses, runs[1].losses);
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});
