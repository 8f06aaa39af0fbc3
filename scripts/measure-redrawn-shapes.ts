/**
 * Whether the tiny diffusion model keeps a clean scene's shape when it redraws it (as training images for a tiny CLIP
 * captioned from their scenes would be made): clean scenes of each shape are noised to one step of a DDIM schedule and
 * denoised from there by the tiny UNet under their own caption, and the fidelity taste's geometric test judges the
 * result. Prints, per start step, how many of each shape the test still finds. `--grid`: the first 12 clean scenes on
 * the left (BASE), their redrawings on the right (TUNED), one row per start step.
 * Usage: node --import tsx scripts/measure-redrawn-shapes.ts [--scenes 96] [--steps 6] [--guidance 5] [--seed 1] [--grid OUT.png]
 */
import * as fs from 'node:fs';
import { composeGrid } from '../src/core/demo/grid';
import { ddimCoefficients, ddimStepWithLogProb, ddimTimesteps } from '../src/core/diffusion/ddim';
import { StableDiffusionPipeline } from '../src/core/diffusion/pipeline';
import { GaussianRng } from '../src/core/diffusion/rng';
import { embeddedModelDir } from '../src/core/experiment/modelDir';
import type { ImageRGB } from '../src/core/image/rgb';
import { encodePng } from '../src/core/image/png';
import { mulberry32 } from '../src/core/random';
import { CLEAN, clipItem, clipScene, renderClipItem, toImageRGB } from '../src/core/tiny/clipScenes';
import { fitShape } from '../src/core/tiny/fidelity';
import { encodeLatent, TINY_IMAGE_SIZE, TINY_LATENT_SIZE, TINY_SCALING_FACTOR } from '../src/core/tiny/model';
import { caption, COLOURS, SHAPES } from '../src/core/tiny/scenes';
import { scriptFlags } from './flags';

const { flag, num } = scriptFlags('measure-redrawn-shapes.ts [--scenes N] [--steps N] [--guidance G] [--seed S] [--grid OUT.png]');

// [a; b]: the unconditional half first, as classifier-free guidance batches them.
function twice(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function main(): Promise<void> {
  const N = num('scenes', '96'), steps = num('steps', '6'), guidance = num('guidance', '5'), seed = num('seed', '1');
  const rand = mulberry32(seed), gauss = new GaussianRng(seed + 1);
  const items = Array.from({ length: N }, (_, i) => {
    const colour = COLOURS[Math.floor(rand() * COLOURS.length)];
    const background = COLOURS.filter((c) => c !== colour)[Math.floor(rand() * (COLOURS.length - 1))];
    return clipItem(clipScene(rand, SHAPES[i % SHAPES.length], colour, background, [0.12, 0.34]), rand, 0);
  });
  const clean = items.map((it) => renderClipItem(it, rand, gauss, CLEAN));
  const pipe = await StableDiffusionPipeline.load(embeddedModelDir());
  try {
    const L = TINY_LATENT_SIZE, per = pipe.latentChannels * L * L;
    const prompts = items.map((it) => caption({ ...it.scene, captionHasSize: false }));
    const cond = await pipe.encodePrompts(prompts), uncond = await pipe.encodePrompts(prompts.map(() => ''), { negative: true });
    const context = { ...cond, data: twice(uncond.data, cond.data), batch: 2 * N };
    const timesteps = ddimTimesteps(pipe.schedule.config, steps);
    const keep = (imgs: ImageRGB[]) => SHAPES.map((s) => `${s} ${imgs.filter((im, k) => items[k].scene.shape === s && fitShape(im)?.shape === s).length}/${items.filter((it) => it.scene.shape === s).length}`).join(', ');
    console.log(`clean scenes: the geometric test finds ${keep(clean.map(toImageRGB))}`);
    const rows = [];
    for (let start = 1; start < steps; start++) {
      const a = pipe.schedule.alphasCumprod[timesteps[start]];
      const noise = new Float32Array(N * per);
      gauss.fill(noise);
      let x: Float32Array = new Float32Array(N * per);
      clean.forEach((img, k) => encodeLatent(img).forEach((v, i) => { x[k * per + i] = Math.sqrt(a) * v * TINY_SCALING_FACTOR + Math.sqrt(1 - a) * noise[k * per + i]; }));
      for (let i = start; i < steps; i++) {
        const out = await pipe.predict(twice(x, x), 2 * N, L, L, timesteps[i], context);
        const guided = x.map((_, j) => out[j] + guidance * (out[N * per + j] - out[j]));
        x = ddimStepWithLogProb({ sample: x, modelOutput: guided, batch: N, coefficients: ddimCoefficients(pipe.schedule, timesteps[i], steps, 0) }).prevSample;
      }
      const dec = await pipe.decode(x, N, L, L), S = TINY_IMAGE_SIZE, plane = S * S;
      const redrawn: ImageRGB[] = items.map((_, k) => ({
        width: S, height: S,
        data: Uint8Array.from({ length: 3 * plane }, (_, j) => Math.round(Math.min(1, Math.max(0, (dec.data[k * 3 * plane + (j % 3) * plane + Math.floor(j / 3)] + 1) / 2)) * 255)),
      }));
      console.log(`redrawn from step ${start + 1} of ${steps} (t = ${timesteps[start]}): the geometric test finds ${keep(redrawn)}`);
      rows.push({ base: clean.slice(0, 12).map(toImageRGB), tuned: redrawn.slice(0, 12) });
    }
    const grid = process.argv.includes('--grid') ? flag('grid') : undefined;
    if (grid) fs.writeFileSync(grid, encodePng(composeGrid(rows, { scale: 3 })));
  } finally {
    await pipe.release();
  }
}

main().catch((e) => { console.error((e as Error).stack ?? (e as Error).message); process.exit(1); });
