import { defineCommand } from './command';
import { benchGenerate } from '../core/bench/generate';
import { PIPELINE_FLAGS, openPipeline, toLatent } from './generate';

/** `ddpo bench generate`: UNet evaluations per second and images per second on one execution provider. */
export const benchGenerateCommand = defineCommand({
  path: ['bench', 'generate'],
  summary: 'Measure image generation speed (UNet evals/s, images/s)',
  flags: { ...PIPELINE_FLAGS, steps: 'integer>=1', guidance: 'number', images: 'integer>=1', width: 'integer>=1', height: 'integer>=1', json: 'boolean' },
  required: ['model'],
  usage: 'ddpo bench generate --model DIR [--ep cpu|webgpu|cuda] [--steps 20] [--guidance 7.5] [--images 4] [--width PX --height PX] [--json] [--revision REV] [--cache DIR] [--offline] [--fast-unet auto|on|off]',
  async run({ flags }, io) {
    const pipe = await openPipeline(flags, io);
    try {
      const opts = {
        steps: flags.steps ?? 20, guidance: flags.guidance ?? 7.5, images: flags.images ?? 4, signal: io.signal,
        latentWidth: await toLatent(pipe, flags.width, 'width'), latentHeight: await toLatent(pipe, flags.height, 'height'),
      };
      const r = await benchGenerate(pipe, opts);
      if (flags.json) io.out(JSON.stringify({ ep: pipe.ep, ...r }));
      else {
        io.out(`ep ${pipe.ep}, ${r.images} images, ${r.steps} steps, latents ${r.latentSize}, guidance ${opts.guidance}`);
        io.out(`UNet evaluations/s: ${r.unetEvalsPerSec.toFixed(2)}`);
        io.out(`images/s: ${r.imagesPerSec.toFixed(3)} (${r.secondsPerImage.toFixed(3)} s/image)`);
      }
      return 0;
    } finally {
      await pipe.release();
    }
  },
});
