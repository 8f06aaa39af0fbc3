import { defineCommand, UsageError, type CliIO, type FlagValues } from './command';
import { StableDiffusionPipeline } from '../core/diffusion/pipeline';
import { MAX_FOLDER_IMAGES, generateIntoFolder } from '../core/diffusion/outputFolder';
import { useFastUnet } from '../core/diffusion/fastUnet';
import { jobProviders, machineBackends } from '../core/runtime/jobProviders';
import { parseProviderSetting } from '../core/runtime/providers';
import { defaultModelCacheDir, resolveModel } from '../core/models/hubDownload';

/** The flags {@link openPipeline} reads, for every command that opens a model (--model required). */
export const PIPELINE_FLAGS = { model: 'text', ep: 'text', revision: 'text', cache: 'text', offline: 'boolean', 'fast-unet': ['auto', 'on', 'off'] } as const;

/** Opens --model: a local folder, or a Hub repo id (downloaded into --cache, token from $HF_TOKEN). */
export async function openPipeline(flags: FlagValues<typeof PIPELINE_FLAGS, 'model'>, io: CliIO): Promise<StableDiffusionPipeline> {
  // auto: on a GPU provider the UNet is rebuilt in float16 with fused attention (about twice as fast there)
  const fast = flags['fast-unet'] ?? 'auto';
  // auto: the best provider this machine offers, as `ddpo train --ep auto` and the studio choose it
  const setting = parseProviderSetting(flags.ep ?? 'cpu');
  const providers = setting === 'auto' ? jobProviders(setting, await machineBackends(), (l) => io.err(l)) : undefined;
  const dir = await resolveModel(flags.model, {
    cacheDir: flags.cache ?? defaultModelCacheDir(),
    revision: flags.revision,
    token: process.env.HF_TOKEN, offline: flags.offline === true, signal: io.signal, onLog: (l) => io.err(l),
    onProgress: (p) => io.progress(`downloading ${p.file} ${(p.bytes / 2 ** 20).toFixed(0)}/${(p.total / 2 ** 20).toFixed(0)} MiB`),
  });
  const pipe = await StableDiffusionPipeline.load(dir, { ...(setting === 'auto' ? { providers } : { ep: setting }), onWarning: (m) => io.err(`warning: ${m}`) });
  if (fast === 'on' || (fast === 'auto' && pipe.ep !== 'cpu')) useFastUnet(pipe, { providers: { candidates: [pipe.ep] }, onLog: (l) => io.err(l) });
  return pipe;
}

/** Pixels -> latent pixels for this model's VAE; errors when not a multiple of its factor. */
export async function toLatent(pipe: StableDiffusionPipeline, px: number | undefined, name: string): Promise<number | undefined> {
  if (px === undefined) return undefined;
  const factor = await pipe.vaeScaleFactor();
  if (px % factor !== 0) throw new Error(`--${name} must be a multiple of ${factor} pixels for this model, got ${px}`);
  return px / factor;
}

/** `ddpo generate`: text-to-image with DDIM, writing PNGs with their settings as metadata. */
export const generateCommand = defineCommand({
  path: ['generate'],
  summary: 'Generate images from a prompt with a Stable Diffusion ONNX model',
  flags: {
    ...PIPELINE_FLAGS, prompt: 'text', negative: 'text', seed: 'integer>=0', steps: 'integer>=1', guidance: 'number', eta: 'number',
    count: 'integer>=1', batch: 'integer>=1', width: 'integer>=1', height: 'integer>=1', out: 'text',
  },
  required: ['model', 'prompt', 'out'],
  usage: [
    'ddpo generate --model DIR --prompt "..." [--negative "..."] [--seed N] [--steps N] [--guidance G] [--eta E]',
    '              [--count K] [--batch B] [--width PX --height PX] --out DIR [--ep cpu|cuda|webgpu]',
    '              [--revision REV] [--cache DIR] [--offline] [--fast-unet auto|on|off]',
    '--model is a local ONNX folder or a Hugging Face repo id (downloaded once into --cache; $HF_TOKEN for gated repos).',
    'Image k gets seed N+k and is written to OUT/<seed>.png as soon as it is made; each PNG records prompt, seed and',
    'settings in its metadata, and a rerun keeps the images already in OUT with the same settings. At most 10,000 a run.',
    'Defaults: seed 0, steps 20, guidance 7.5, eta 1, count 1, batch 1, size from the model.',
    '--fast-unet: run the UNet rebuilt in float16 with fused attention; auto (default) does so on a GPU provider.',
  ].join('\n'),
  async run({ flags }, io) {
    const opts = {
      prompt: flags.prompt, negativePrompt: flags.negative ?? '', seed: flags.seed ?? 0, steps: flags.steps ?? 20,
      guidance: flags.guidance ?? 7.5, eta: flags.eta ?? 1, count: flags.count ?? 1, batchSize: flags.batch ?? 1,
    };
    if (opts.count > MAX_FOLDER_IMAGES) throw new UsageError(`--count must be at most ${MAX_FOLDER_IMAGES.toLocaleString('en-US')} per run; for more, run again with --seed ${opts.seed + MAX_FOLDER_IMAGES}`);
    const out = flags.out;
    const pipe = await openPipeline(flags, io);
    try {
      const latentWidth = await toLatent(pipe, flags.width, 'width');
      const latentHeight = await toLatent(pipe, flags.height, 'height');
      await generateIntoFolder(pipe, {
        ...opts, latentWidth, latentHeight, signal: io.signal, onWarning: (m) => io.err(`warning: ${m}`),
        onProgress: (p) => io.progress(`image ${p.imagesDone + 1}/${p.images} step ${p.step}/${p.steps}`),
      }, out, {
        onKept: (n) => { if (n) io.out(`kept ${n} of ${opts.count} images already in ${out} with these settings${n < opts.count ? `; making the other ${opts.count - n}` : ''}`); },
        onSaved: (file) => io.out(file),
      });
      return 0;
    } finally {
      await pipe.release();
    }
  },
});
