/** The shipped tiny model: a valid SD folder under 10 MB whose samples show what the prompt asks for. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { loadModel } from '../../../src/core/onnx/proto';
import { encodeLatent, TINY_SCALING_FACTOR } from '../../../src/core/tiny/model';
import { renderScene } from '../../../src/core/tiny/scenes';
import { measureImage } from '../../../src/core/tiny/measure';
import { toRgbImages } from '../../../src/core/diffusion/generate';
import { makeScene } from './sceneHelpers';
import { sampleImages } from '../../../src/core/tiny/preview';
import { needsTinyModel } from '../fixtures';

const DIR = join(__dirname, '../../../media/tiny-model');
const present = existsSync(join(DIR, 'model_index.json'));
const skip = needsTinyModel();
let pipe: StableDiffusionPipeline;

before(async () => { if (present) pipe = await StableDiffusionPipeline.load(DIR); });
after(async () => { await pipe?.release(); });

function folderBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => { const p = join(dir, f); const s = statSync(p); return n + (s.isDirectory() ? folderBytes(p) : s.size); }, 0);
}

test('the folder is at most 10 MB and its UNet has cross-attention projections LoRA can target', { skip }, () => {
  assert.ok(folderBytes(DIR) <= 10 * 1024 * 1024, `${folderBytes(DIR)} bytes`);
  const unet = loadModel(join(DIR, 'unet/model.onnx'));
  const names = unet.graph.nodes.map((n) => n.name);
  for (const proj of ['to_q', 'to_k', 'to_v', 'to_out.0']) {
    for (const attn of ['attn1', 'attn2']) assert.ok(names.some((n) => n.includes(`/${attn}/${proj}/`)), `${attn}/${proj}`);
  }
});

test('the UNet maps a batch of 2 latents to noise predictions of the same shape', { skip }, async () => {
  assert.equal(pipe.defaultLatentSize, 16);
  assert.equal(await pipe.vaeScaleFactor(), 2);
  const ctx = await pipe.encodePrompts(['a big red circle on a blue background', '']);
  assert.deepEqual([ctx.batch, ctx.sequence, ctx.dim], [2, 16, 32]);
  const out = await pipe.predict(new Float32Array(2 * 4 * 16 * 16).fill(0.1), 2, 16, 16, 500, ctx);
  assert.equal(out.length, 2 * 4 * 16 * 16);
  assert.ok(out.every(Number.isFinite));
});

test('the decoder turns encoded latents back into the scene', { skip }, async () => {
  const scene = makeScene('square', 'green', 'purple', 'big', 'right');
  const lat = encodeLatent(renderScene(scene, 32)).map((v) => v * TINY_SCALING_FACTOR);
  const dec = await pipe.decode(lat, 1, 16, 16);
  assert.deepEqual([dec.height, dec.width], [32, 32]);
  const m = measureImage(toRgbImages(dec.data, 1, 32, 32)[0]);
  assert.equal(m.shapeName, 'green');
  assert.equal(m.backgroundName, 'purple');
  assert.ok(m.cx > 0.6);
});

test('20-step samples show the prompted shape colour on the prompted background', { skip }, async () => {
  const seeds = [0, 1, 2, 3, 4, 5];
  const cases: Array<[string, string, string]> = [
    ['a big red circle on a blue background', 'red', 'blue'],
    ['a big yellow square on a black background', 'yellow', 'black'],
  ];
  for (const [prompt, colour, background] of cases) {
    const images = await sampleImages(pipe, [prompt], { seeds, steps: 20, guidance: 5 });
    const m = images.map((im) => measureImage(im));
    const ok = m.filter((x) => x.shapeName === colour && x.backgroundName === background).length;
    assert.ok(ok >= 4, `${prompt}: measured ${m.map((x) => `${x.shapeName} on ${x.backgroundName}`).join(', ')}`);
  }
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const measureSamples = async (prompt: string) =>
  (await sampleImages(pipe, [prompt], { seeds: [0, 1, 2, 3, 4, 5], steps: 20, guidance: 5 })).map((im) => measureImage(im));

test('"big" samples cover more of the image than "small" ones', { skip }, async () => {
  const big = mean((await measureSamples('a big orange triangle on a blue background')).map((m) => m.area));
  const small = mean((await measureSamples('a small orange triangle on a blue background')).map((m) => m.area));
  assert.ok(big > 1.5 * small, `big ${big}, small ${small}`);
});

test('"square" samples fill their bounding box more than "triangle" samples', { skip }, async () => {
  const square = await measureSamples('a big white square on a purple background');
  const triangle = await measureSamples('a big white triangle on a purple background');
  const fill = (ms: typeof square) => mean(ms.map((m) => m.fill));
  assert.ok(fill(square) > fill(triangle) + 0.15, `square fill ${fill(square)}, triangle fill ${fill(triangle)}`);
  assert.ok(square.filter((m) => m.shapeGuess === 'square').length >= 3, `square guessed as ${square.map((m) => m.shapeGuess)}`);
  assert.ok(triangle.filter((m) => m.shapeGuess === 'triangle').length >= 3, `triangle guessed as ${triangle.map((m) => m.shapeGuess)}`);
});
