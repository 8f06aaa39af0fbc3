import { CliCommand, CliIO, FlagTable, parseFlags } from './command';
import { benchGenerate } from '../core/bench/generate';
import { parseExecutionProvider } from '../core/runtime/providers';
import { PIPELINE_FLAGS, numberFlag, openPipeline, pixelFlag, toLatent } from './generate';

const FLAGS: FlagTable = { ...PIPELINE_FLAGS, steps: 'integer', guidance: 'number', images: 'integer', width: 'integer', height: 'integer', json: 'boolean' };

/** `ddpo bench generate`: UNet evaluations per second and images per second on one execution provider. */
export const benchGenerateCommand: CliCommand = {
  path: ['bench', 'generate'],
  summary: 'Measure image generation speed (UNet evals/s, images/s)',
  flags: FLAGS,
  usage: 'ddpo bench generate --model DIR [--ep cpu|webgpu|cuda] [--steps 20] [--guidance 7.5] [--images 4] [--width PX --height PX] [--json] [--revision REV] [--cache DIR] [--offline] [--fast-unet auto|on|off]',
  async run(argv: string[], io: CliIO): Promise<number> {
    const { flags } = parseFlags(argv, FLAGS);
    if (typeof flags.model !== 'string') {
      io.err('ddpo bench generate needs --model DIR\n' + benchGenerateCommand.usage);
      return 2;
    }
    const ep = parseExecutionProvider(typeof flags.ep === 'string' ? flags.ep : 'cpu');
    const steps = numberFlag(flags, 'steps', 20, true), guidance = numberFlag(flags, 'guidance', 7.5), images = numberFlag(flags, 'images', 4, true);
    const [width, height] = [pixelFlag(flags, 'width'), pixelFlag(flags, 'height')];
    const pipe = await openPipeline(flags, io);
    try {
      const opts = { steps, guidance, images, latentWidth: await toLatent(pipe, width, 'width'), latentHeight: await toLatent(pipe, height, 'height'), signal: io.signal };
      const r = await benchGenerate(pipe, opts);
      if (flags.json) io.out(JSON.stringify({ ep, ...r }));
      else {
        io.out(`ep ${ep}, ${r.images} images, ${r.steps} steps, latents ${r.latentSize}, guidance ${opts.guidance}`);
        io.out(`UNet evaluations/s: ${r.unetEvalsPerSec.toFixed(2)}`);
        io.out(`images/s: ${r.imagesPerSec.toFixed(3)} (${r.secondsPerImage.toFixed(3)} s/image)`);
      }
      return 0;
    } finally {
      await pipe.release();
    }
  },
};
