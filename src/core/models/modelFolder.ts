import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

/** One thing wrong with a model folder. */
export interface ModelFolderProblem {
  /** Path relative to the model folder. */
  file: string;
  problem: string;
}

/** Thrown when a model folder cannot be used; lists every problem at once. */
export class ModelFolderError extends Error {
  constructor(readonly dir: string, readonly problems: ModelFolderProblem[]) {
    super(`Model folder ${dir} is not usable:\n${problems.map((p) => `  - ${p.file}: ${p.problem}`).join('\n')}\n` +
      'Re-download the model (ddpo downloads only the ONNX files it needs) or point --model at a Stable Diffusion ONNX folder ' +
      '(diffusers/optimum layout: model_index.json, unet/, text_encoder/, vae_decoder/, tokenizer/, scheduler/).');
    this.name = 'ModelFolderError';
  }
}

/** What a validated Stable Diffusion ONNX folder holds. */
export interface ModelFolder {
  dir: string;
  /** A readable id: `_name_or_path` of model_index.json, else the folder name. */
  modelId: string;
  unet: string;
  textEncoder: string;
  vaeDecoder: string;
  vaeEncoder?: string;
  /** SDXL's second text encoder and its tokenizer (tokenizer_2/, else the first tokenizer's folder). */
  textEncoder2?: string;
  tokenizer2Dir?: string;
  /** SDXL pipelines' `force_zeros_for_empty_prompt` (model_index.json, default true): an empty negative prompt is all zeros. */
  forceZerosForEmptyPrompt: boolean;
  tokenizerDir: string;
  schedulerConfig: Record<string, unknown>;
  /** Latent scaling of the VAE (vae_decoder/config.json `scaling_factor`, default 0.18215). */
  vaeScalingFactor: number;
  /** UNet `sample_size` from unet/config.json when present (latent pixels). */
  unetSampleSize?: number;
  /** Pixels per latent pixel, 2^(len(block_out_channels)-1) from vae_decoder/config.json when it says. */
  vaeScaleFactor?: number;
}

const REQUIRED_ONNX = ['unet/model.onnx', 'text_encoder/model.onnx', 'vae_decoder/model.onnx'];
const OPTIONAL_ONNX = ['vae_encoder/model.onnx', 'text_encoder_2/model.onnx'];

/** What is wrong with an ONNX file that cannot be a model (a Git LFS pointer, an HTML error page, a cut-off download); undefined when it looks like one. */
export function onnxProblem(path: string): string | undefined {
  const size = statSync(path).size;
  if (size < 16) return `only ${size} bytes; the download is incomplete`;
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(64);
  try { readSync(fd, head, 0, 64, 0); } finally { closeSync(fd); }
  const text = head.toString('latin1');
  if (text.startsWith('version https://git-lfs')) return 'is a Git LFS pointer, not the model; run `git lfs pull` or download again';
  if (/^\s*</.test(text)) return 'is an HTML/XML page, not an ONNX model; the download went wrong';
  const tag = head[0];
  const field = tag >> 3;
  if ((tag & 7) !== 0 && (tag & 7) !== 2 || field < 1 || field > 20) return 'does not start like an ONNX protobuf; the file is corrupt';
  return undefined;
}

function readJson(dir: string, rel: string, problems: ModelFolderProblem[], required: boolean): Record<string, unknown> | undefined {
  const path = join(dir, rel);
  if (!existsSync(path)) {
    if (required) problems.push({ file: rel, problem: existsSync(path + '.part') ? 'download incomplete (.part file present)' : 'missing' });
    return undefined;
  }
  try {
    const v = JSON.parse(readFileSync(path, 'utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    problems.push({ file: rel, problem: 'is not a JSON object' });
  } catch (e) {
    problems.push({ file: rel, problem: `is not valid JSON (${(e as Error).message})` });
  }
  return undefined;
}

/** Lists every missing or corrupt file of a Stable Diffusion ONNX folder (empty when usable). */
export function inspectModelFolder(dirIn: string): { problems: ModelFolderProblem[]; folder?: ModelFolder } {
  const dir = resolve(dirIn);
  const problems: ModelFolderProblem[] = [];
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return { problems: [{ file: '.', problem: `folder ${dir} does not exist` }] };
  const index = readJson(dir, 'model_index.json', problems, true);
  const scheduler = readJson(dir, 'scheduler/scheduler_config.json', problems, true);
  for (const rel of [...REQUIRED_ONNX, ...OPTIONAL_ONNX]) {
    const path = join(dir, rel);
    if (!existsSync(path)) {
      // vae_encoder (image-to-image) and text_encoder_2 (SDXL) are optional
      if (!OPTIONAL_ONNX.includes(rel)) problems.push({ file: rel, problem: existsSync(path + '.part') ? 'download incomplete (.part file present)' : 'missing' });
      continue;
    }
    const p = onnxProblem(path);
    if (p) problems.push({ file: rel, problem: p });
  }
  const tok = join(dir, 'tokenizer');
  const hasBpe = existsSync(join(tok, 'vocab.json')) && existsSync(join(tok, 'merges.txt'));
  if (!hasBpe && !existsSync(join(tok, 'tokenizer.json'))) {
    for (const f of ['vocab.json', 'merges.txt']) if (!existsSync(join(tok, f))) problems.push({ file: `tokenizer/${f}`, problem: 'missing (or provide tokenizer/tokenizer.json)' });
  }
  if (hasBpe) readJson(dir, 'tokenizer/vocab.json', problems, true);
  const vaeCfg = readJson(dir, 'vae_decoder/config.json', problems, false);
  const unetCfg = readJson(dir, 'unet/config.json', problems, false);
  if (problems.length > 0) return { problems };
  const scaling = typeof vaeCfg?.scaling_factor === 'number' ? vaeCfg.scaling_factor : 0.18215;
  const name = typeof index?._name_or_path === 'string' && index._name_or_path ? index._name_or_path : basename(dir);
  return {
    problems,
    folder: {
      dir, modelId: name,
      unet: join(dir, REQUIRED_ONNX[0]), textEncoder: join(dir, REQUIRED_ONNX[1]), vaeDecoder: join(dir, REQUIRED_ONNX[2]),
      vaeEncoder: existsSync(join(dir, 'vae_encoder/model.onnx')) ? join(dir, 'vae_encoder/model.onnx') : undefined,
      textEncoder2: existsSync(join(dir, OPTIONAL_ONNX[1])) ? join(dir, OPTIONAL_ONNX[1]) : undefined,
      tokenizer2Dir: existsSync(join(dir, 'tokenizer_2')) ? join(dir, 'tokenizer_2') : undefined,
      forceZerosForEmptyPrompt: index?.force_zeros_for_empty_prompt !== false,
      tokenizerDir: tok, schedulerConfig: scheduler!, vaeScalingFactor: scaling,
      unetSampleSize: typeof unetCfg?.sample_size === 'number' ? unetCfg.sample_size : undefined,
      vaeScaleFactor: Array.isArray(vaeCfg?.block_out_channels) ? 2 ** (vaeCfg.block_out_channels.length - 1) : undefined,
    },
  };
}

/** Validates a model folder; throws {@link ModelFolderError} naming every missing or corrupt file. */
export function loadModelFolder(dir: string): ModelFolder {
  const { problems, folder } = inspectModelFolder(dir);
  if (!folder) throw new ModelFolderError(resolve(dir), problems);
  return folder;
}

const fingerprints = new Map<string, string>();

/**
 * A short content fingerprint of the model (12 hex chars), cheap even for multi-GB weights:
 * sha256 over each ONNX file's size plus its first and last MiB, and over the JSON configs.
 */
export function modelFingerprint(folder: ModelFolder): string {
  const files = [folder.unet, folder.textEncoder, folder.vaeDecoder];
  const key = files.map((f) => `${f}:${statSync(f).size}:${statSync(f).mtimeMs}`).join('|');
  const cached = fingerprints.get(key);
  if (cached) return cached;
  const h = createHash('sha256');
  const chunk = Buffer.alloc(1 << 20);
  for (const f of files) {
    const size = statSync(f).size;
    h.update(`${size}\n`);
    const fd = openSync(f, 'r');
    try {
      for (const pos of size > 2 * chunk.length ? [0, size - chunk.length] : [0]) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, size), pos);
        h.update(chunk.subarray(0, n));
      }
    } finally { closeSync(fd); }
  }
  for (const rel of ['model_index.json', 'scheduler/scheduler_config.json', 'vae_decoder/config.json']) {
    const p = join(folder.dir, rel);
    if (existsSync(p)) h.update(readFileSync(p));
  }
  const hex = h.digest('hex').slice(0, 12);
  fingerprints.set(key, hex);
  return hex;
}
