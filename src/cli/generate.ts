import { CliCommand, CliIO, FlagTable, parseFlags } from './command';
import { StableDiffusionPipeline } from '../core/diffusion/pipeline';
import { MAX_FOLDER_IMAGES, generateIntoFolder } from '../core/diffusion/outputFolder';
import { useFastUnet } from '../core/diffusion/fastUnet';
import { parseExecutionProvider } from '../core/runtime/providers';
import { resolveModel } from '../core/models/hubDownload';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The flags {@link openPipeline} reads, for every command that opens a model. */
export const PIPELINE_FLAGS: FlagTable = { model: 'text', ep: 'text', revision: 'text', cache: 'text', offline: 'boolean', 'fast-unet': ['auto', 'on', 'off'] };

const FLAGS: FlagTable = {
  ...PIPELINE_FLAGS, prompt: 'text', negative: 'text', seed: 'integer', steps: 'integer', guidance: 'number', eta: 'number',
  count: 'integer', batch: 'integer', width: 'integer', height: 'integer', out: 'text',
};

/** Opens --model: a local folder, or a Hub repo id (downloaded into --cache, token from $HF_TOKEN). */
export async function openPipeline(flags: Record<string, string | true>, io: CliIO): Promise<StableDiffusionPipeline> {
  // auto: on a GPU provider the UNet is rebuilt in float16 with fused attention (about twice as fast there)
  const fast = flags['fast-unet'] ?? 'auto';
  if (fast !== 'auto' && fast !== 'on' && fast !== 'off') throw new Error(`--fast-unet must be auto, on or off, got '${fast}'`);
  const dir = await resolveModel(String(flags.model), {
    cacheDir: typeof flags.cache === 'string' ? flags.cache : join(homedir(), '.cache', 'ddpo-studio', 'models'),
    revision: typeof flags.revision === 'string' ? flags.revision : undefined,
    token: process.env.HF_TOKEN, offline: flags.offline === true, signal: io.signal, onLog: (l) => io.err(l),
    onProgress: (p) => io.progress(`downloading ${p.file} ${(p.bytes / 2 ** 20).toFixed(0)}/${(p.total / 2 ** 20).toFixed(0)} MiB`),
  });
  const pipe = await StableDiffusionPipeline.load(dir, { ep: parseExecutionProvider(typeof flags.ep === 'string' ? flags.ep : 'cpu'), onWarning: (m) => io.err(`warning: ${m}`) });
  if (fast === 'on' || (fast === 'auto' && pipe.ep !== 'cpu')) useFastUnet(pipe, { providers: { candidates: [pipe.ep] }, onLog: (l) => io.err(l) });
  return pipe;
}

/** Parses a numeric flag, with a default; errors name the flag. */
export function numberFlag(flags: Record<string, string | true>, name: string, def?: number, integer = false): number {
  const v = flags[name];
  if (v === undefined) {
    if (def === undefined) throw new Error(`--${name} is required`);
    return def;
  }
  const n = Number(v);
  if (v === true || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'}, got '${v}'`);
  return n;
}

/** --width/--height in pixels, or undefined for the model's default. */
export function pixelFlag(flags: Record<string, string | true>, name: 'width' | 'height'): number | undefined {
  if (flags[name] === undefined) return undefined;
  const px = numberFlag(flags, name, undefined, true);
  if (px < 1) throw new Error(`--${name} must be positive, got ${px}`);
  return px;
}

/** Pixels -> latent pixels for this model's VAE; errors when not a multiple of its factor. */
export async function toLatent(pipe: StableDiffusionPipeline, px: number | undefined, name: string): Promise<number | undefined> {
  if (px === undefined) return undefined;
  const factor = await pipe.vaeScaleFactor();
  if (px % factor !== 0) throw new Error(`--${name} must be a multiple of ${factor} pixels for this model, got ${px}`);
  return px / factor;
}

/** `ddpo generate`: text-to-image with DDIM, writing PNGs with their settings as metadata. */
export const generateCommand: CliCommand = {
  path: ['generate'],
  summary: 'Generate images from a prompt with a Stable Diffusion ONNX model',
  flags: FLAGS,
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
  async run(argv: string[], io: CliIO): Promise<number> {
    let flags, opts, width, height;
    try {
      ({ flags } = parseFlags(argv, FLAGS));
      if (typeof flags.model !== 'string' || typeof flags.prompt !== 'string' || typeof flags.out !== 'string') {
        io.err('ddpo generate needs --model DIR, --prompt "..." and --out DIR\n' + generateCommand.usage);
        return 2;
      }
      opts = {
        prompt: flags.prompt, negativePrompt: typeof flags.negative === 'string' ? flags.negative : '',
        seed: numberFlag(flags, 'seed', 0, true), steps: numberFlag(flags, 'steps', 20, true),
        guidance: numberFlag(flags, 'guidance', 7.5), eta: numberFlag(flags, 'eta', 1),
        count: numberFlag(flags, 'count', 1, true), batchSize: numberFlag(flags, 'batch', 1, true),
      };
      if (opts.seed < 0 || opts.count < 1 || opts.steps < 1) throw new Error('--seed must be >= 0, --count and --steps >= 1');
      if (opts.count > MAX_FOLDER_IMAGES) throw new Error(`--count must be at most ${MAX_FOLDER_IMAGES.toLocaleString('en-US')} per run; for more, run again with --seed ${opts.seed + MAX_FOLDER_IMAGES}`);
      [width, height] = [pixelFlag(flags, 'width'), pixelFlag(flags, 'height')];
    } catch (e) {
      io.err((e as Error).message);
      return 2;
    }
    const out = flags.out;
    const pipe = await openPipeline(flags, io);
    try {
      const latentWidth = await toLatent(pipe, width, 'width');
      const latentHeight = await toLatent(pipe, height, 'height');
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
};
