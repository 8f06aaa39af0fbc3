/** Writes built graphs as a Stable Diffusion ONNX folder in the diffusers/optimum layout. */
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { atomicWriteFileSync } from '../fsutil';
import { join } from 'node:path';
import { Model } from '../onnx/ir';
import { saveModel } from '../onnx/proto';

/** What {@link writeModelFolder} writes. */
export interface ModelFolderParts {
  unet: Model;
  textEncoder: Model;
  /** SDXL's second text encoder (written with the tokenizer again as `tokenizer_2/`). */
  textEncoder2?: Model;
  vaeDecoder: Model;
  /** Written as `vae_encoder/` when given (optional in the layout; Diffusion-DPO encodes rated images with it). */
  vaeEncoder?: Model;
  /** Folder holding the CLIP tokenizer files (vocab.json, merges.txt, tokenizer_config.json, ...), copied as `tokenizer/`. */
  tokenizerDir: string;
  /** scheduler/scheduler_config.json; default DDIM with SD 1.x betas. */
  scheduler?: Record<string, unknown>;
  /** Written to `model_index.json` as `_name_or_path`. */
  name?: string;
  /** Latent scaling of the VAE (default: the VAE config's, else 0.18215). */
  scalingFactor?: number;
  /** Put weights in `model.onnx_data` beside each model: always, never, or (default) when a model is over 1.5 GB. */
  externalData?: boolean | 'auto';
}

/** DDIM with SD 1.x's scaled-linear betas, as in the diffusers pipelines. */
export const DEFAULT_SCHEDULER_CONFIG: Record<string, unknown> = {
  _class_name: 'DDIMScheduler', num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear',
  clip_sample: false, set_alpha_to_one: false, steps_offset: 1, prediction_type: 'epsilon',
};

const TOKENIZER_FILES = ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.json'];

function weightBytes(m: Model): number {
  let n = 0;
  for (const t of m.graph.initializers.values()) n += t.data.byteLength;
  return n;
}

function configOf(m: Model, key: string): Record<string, unknown> {
  const raw = m.metadata[key];
  if (!raw) return {};
  try { return JSON.parse(raw) as Record<string, unknown>; } catch { return {}; }
}

function writeJson(file: string, v: unknown): void {
  atomicWriteFileSync(file, JSON.stringify(v, null, 2) + '\n');
}

/** Writes model_index.json, unet/, text_encoder/, vae_decoder/ (+ config.json with scaling_factor), vae_encoder/ when given, scheduler/, tokenizer/. */
export function writeModelFolder(dir: string, parts: ModelFolderParts): void {
  if (!existsSync(join(parts.tokenizerDir, 'vocab.json')) && !existsSync(join(parts.tokenizerDir, 'tokenizer.json'))) {
    throw new Error(`writeModelFolder: ${parts.tokenizerDir} has no vocab.json or tokenizer.json; pass a CLIP tokenizer folder`);
  }
  mkdirSync(dir, { recursive: true });
  const index: Record<string, unknown> = {
    _class_name: parts.textEncoder2 ? 'ORTStableDiffusionXLPipeline' : 'OnnxStableDiffusionPipeline',
    ...(parts.name ? { _name_or_path: parts.name } : {}),
    text_encoder: ['diffusers', 'OnnxRuntimeModel'],
    ...(parts.textEncoder2 ? { text_encoder_2: ['diffusers', 'OnnxRuntimeModel'], tokenizer_2: ['transformers', 'CLIPTokenizer'] } : {}),
    unet: ['diffusers', 'OnnxRuntimeModel'],
    vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
    ...(parts.vaeEncoder ? { vae_encoder: ['diffusers', 'OnnxRuntimeModel'] } : {}),
    scheduler: ['diffusers', 'DDIMScheduler'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
  };
  writeJson(join(dir, 'model_index.json'), index);
  const vaeCfg = configOf(parts.vaeDecoder, 'config');
  const scaling = parts.scalingFactor ?? (typeof vaeCfg.scaling_factor === 'number' ? vaeCfg.scaling_factor : 0.18215);
  const models: Array<[string, Model, Record<string, unknown>]> = [
    ['unet', parts.unet, { _class_name: 'UNet2DConditionModel', ...configOf(parts.unet, 'config') }],
    ['text_encoder', parts.textEncoder, { model_type: 'clip_text_model', ...configOf(parts.textEncoder, 'config') }],
    ...(parts.textEncoder2 ? [['text_encoder_2', parts.textEncoder2, { model_type: 'clip_text_model', ...configOf(parts.textEncoder2, 'config') }] as [string, Model, Record<string, unknown>]] : []),
    ['vae_decoder', parts.vaeDecoder, { _class_name: 'AutoencoderKL', ...vaeCfg, scaling_factor: scaling }],
    ...(parts.vaeEncoder ? [['vae_encoder', parts.vaeEncoder, { _class_name: 'AutoencoderKL', ...configOf(parts.vaeEncoder, 'config'), scaling_factor: scaling }] as [string, Model, Record<string, unknown>]] : []),
  ];
  for (const [sub, model, cfg] of models) {
    mkdirSync(join(dir, sub), { recursive: true });
    const ext = parts.externalData ?? 'auto';
    const external = ext === true || (ext === 'auto' && weightBytes(model) > 1.5e9);
    saveModel(model, join(dir, sub, 'model.onnx'), external ? { externalData: 'model.onnx_data' } : {});
    writeJson(join(dir, sub, 'config.json'), cfg);
  }
  mkdirSync(join(dir, 'scheduler'), { recursive: true });
  writeJson(join(dir, 'scheduler', 'scheduler_config.json'), parts.scheduler ?? DEFAULT_SCHEDULER_CONFIG);
  const present = new Set(readdirSync(parts.tokenizerDir));
  for (const sub of parts.textEncoder2 ? ['tokenizer', 'tokenizer_2'] : ['tokenizer']) {
    mkdirSync(join(dir, sub), { recursive: true });
    for (const f of TOKENIZER_FILES) if (present.has(f)) atomicWriteFileSync(join(dir, sub, f), readFileSync(join(parts.tokenizerDir, f)));
  }
}
