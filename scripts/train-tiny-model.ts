/**
 * Trains the embedded tiny text-to-image model and writes it as a Stable Diffusion ONNX folder, plus samples.png
 * (rows: prompts, columns: seeds 0-5; 20 DDIM steps, guidance 5).
 * Usage: node --import tsx scripts/train-tiny-model.ts --out media/tiny-model --steps 4000 --seed 0 [--batch 16] [--lr 1.5e-3]
 *        [--threads 2] [--checkpoint-every 250] [--warmup 200] [--init FOLDER (continue from its UNet)] [--preview-only]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StableDiffusionPipeline } from '../src/core/diffusion/pipeline';
import { encodePng } from '../src/core/image/png';
import { sampleImages, tileImages } from '../src/core/tiny/preview';
import { trainTinyModel } from '../src/core/tiny/train';
import { scriptFlags } from './flags';

const PREVIEW_PROMPTS = [
  'a big red circle on a blue background',
  'a small yellow square on the left on a black background',
  'a big green triangle in the centre on a white background',
  'a small blue circle at the top on a yellow background',
  'a big purple square on the right on a orange background',
  'a big white triangle at the bottom on a red background',
  '',
];

const { flag, num } = scriptFlags('train-tiny-model.ts --out DIR --steps N --seed S');

async function writePreview(dir: string): Promise<void> {
  const pipe = await StableDiffusionPipeline.load(dir);
  try {
    const images = await sampleImages(pipe, PREVIEW_PROMPTS, { seeds: [0, 1, 2, 3, 4, 5], steps: 20, guidance: 5 });
    writeFileSync(join(dir, 'samples.png'), encodePng(tileImages(images, 6, 2), { prompts: PREVIEW_PROMPTS.join('\n') }));
  } finally { await pipe.release(); }
}

async function main(): Promise<void> {
  const out = flag('out', 'media/tiny-model');
  if (!process.argv.includes('--preview-only')) {
    const started = Date.now();
    const { losses } = await trainTinyModel({
      out, steps: num('steps'), seed: num('seed', '0'), batch: num('batch', '16'), lr: num('lr', '1.5e-3'),
      threads: num('threads', '0') || undefined, checkpointEvery: num('checkpoint-every', '250'),
      init: process.argv.includes('--init') ? flag('init') : undefined, warmup: num('warmup', '200'),
    });
    console.log(`trained in ${((Date.now() - started) / 60000).toFixed(1)} min; final loss ${losses[losses.length - 1]?.[1]}`);
  }
  await writePreview(out);
  console.log(`wrote ${join(out, 'samples.png')}`);
}

main().catch((e) => { console.error((e as Error).message); process.exit(1); });
