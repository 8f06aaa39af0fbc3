import { defineCommand } from './command';
import { benchBackbone } from '../core/bench/backbone';
import { BACKBONE_FLAGS, BACKBONE_USAGE, backboneOptions } from './reward';
import { openBackbone } from '../core/reward/openBackbone';

/** `ddpo bench backbone`: a reward backbone's milliseconds per image and per prompt on one execution provider. */
export const benchBackboneCommand = defineCommand({
  path: ['bench', 'backbone'],
  summary: 'Measure a reward backbone\'s speed (ms per image, ms per prompt)',
  flags: { ...BACKBONE_FLAGS, images: 'integer>=1', prompts: 'integer>=1', size: 'integer>=1', batch: 'integer>=1', json: 'boolean' },
  required: ['backbone'],
  usage: 'ddpo bench backbone --backbone builtin|REPO|PATH [--ep EP] [--images 8] [--size 512] [--prompts 16] [--batch 16] [--json]\n' +
    BACKBONE_USAGE +
    '  --images/--size  generated images of SIZE px, embedded in one call (preprocessing included), after one warm-up image\n' +
    '  --batch          images per run of the image tower',
  async run({ flags }, io) {
    const bb = await openBackbone(flags.backbone, { ...(await backboneOptions(flags, io)), batch: flags.batch });
    try {
      const r = await benchBackbone(bb, { images: flags.images, prompts: flags.prompts, imageSize: flags.size });
      if (flags.json) io.out(JSON.stringify(r));
      else {
        io.out(`${r.backbone} on ${r.provider}, ${r.dim}-d embeddings`);
        io.out(`images: ${r.msPerImage.toFixed(1)} ms per image, ${r.cpuMsPerImage.toFixed(1)} CPU ms (${r.images} images of ${r.imageSize} px in one call)`);
        io.out(r.msPerPrompt === undefined ? 'prompts: no text tower' : `prompts: ${r.msPerPrompt.toFixed(1)} ms per prompt, ${r.cpuMsPerPrompt!.toFixed(1)} CPU ms (${r.prompts} prompts in one call)`);
      }
      return 0;
    } finally {
      await bb.dispose?.();
    }
  },
});
