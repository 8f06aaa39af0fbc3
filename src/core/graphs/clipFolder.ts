/**
 * Writes built CLIP towers as a model folder in the layout transformers.js / optimum publish CLIP on the Hub:
 *
 * | path | what |
 * |---|---|
 * | `onnx/vision_model.onnx` | `CLIPVisionModelWithProjection`: `pixel_values [batch,3,S,S]` float -> `image_embeds [batch,P]`, `last_hidden_state [batch,1+(S/patch)²,hidden]` |
 * | `onnx/text_model.onnx` | `CLIPTextModelWithProjection`: `input_ids [batch,sequence]` int64 -> `text_embeds [batch,P]`, `last_hidden_state [batch,sequence,hidden]` |
 * | `config.json` | `model_type` `clip`, `projection_dim` P, `logit_scale_init_value` (the trained logit scale: CLIPModel built from this config starts at it), `text_config` (`clip_text_model`), `vision_config` (`clip_vision_model`) |
 * | `preprocessor_config.json` | `CLIPImageProcessor`: resize the short side to `size.shortest_edge`, centre-crop `crop_size`, ×1/255, normalise by `image_mean`/`image_std` |
 * | `tokenizer.json` | Hugging Face tokenizers format: CLIP's byte-level BPE with `</w>` word ends, bos/eos around |
 * | `vocab.json`, `merges.txt`, `tokenizer_config.json`, `special_tokens_map.json` | the same vocabulary in CLIP's slow-tokenizer files; `model_max_length` is the text tower's `max_position_embeddings` |
 *
 * Embeddings are compared by cosine: unit-normalise `image_embeds` and `text_embeds` first (CLIP's logits are
 * `exp(logit_scale)·cos`).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteFileSync } from '../fsutil';
import { Model } from '../onnx/ir';
import { saveModel } from '../onnx/proto';
import { ClipTextConfig } from './clipText';
import { ClipVisionConfig } from './clipVision';

/** What {@link writeClipFolder} writes. */
export interface ClipFolderParts {
  vision: Model;
  text: Model;
  visionConfig: ClipVisionConfig;
  textConfig: ClipTextConfig;
  /** The learned (or fixed) logit scale, ln of the inverse temperature. */
  logitScale: number;
  /** Folder holding the tokenizer files (tokenizer.json and/or vocab.json + merges.txt, tokenizer_config.json, ...). */
  tokenizerDir: string;
  /** Image preprocessing the towers were trained with. */
  preprocess: { size: number; mean: number[]; std: number[] };
  /** Written to `config.json` as `_name_or_path`. */
  name?: string;
}

const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

function writeJson(file: string, v: unknown): void {
  atomicWriteFileSync(file, JSON.stringify(v, null, 2) + '\n');
}

/** Writes the folder described at the top of this file. */
export function writeClipFolder(dir: string, p: ClipFolderParts): void {
  if (!existsSync(join(p.tokenizerDir, 'tokenizer.json')) && !existsSync(join(p.tokenizerDir, 'vocab.json'))) {
    throw new Error(`writeClipFolder: ${p.tokenizerDir} has no tokenizer.json or vocab.json; pass a CLIP tokenizer folder`);
  }
  if (p.visionConfig.projection_dim !== p.textConfig.projection_dim) {
    throw new Error(`writeClipFolder: image projection ${p.visionConfig.projection_dim} and text projection ${p.textConfig.projection_dim} differ; both towers must embed into one space`);
  }
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  saveModel(p.vision, join(dir, 'onnx', 'vision_model.onnx'));
  saveModel(p.text, join(dir, 'onnx', 'text_model.onnx'));
  writeJson(join(dir, 'config.json'), {
    ...(p.name ? { _name_or_path: p.name } : {}), architectures: ['CLIPModel'], model_type: 'clip',
    projection_dim: p.textConfig.projection_dim, logit_scale_init_value: p.logitScale, initializer_factor: 1.0,
    text_config: { model_type: 'clip_text_model', ...p.textConfig, pad_token_id: p.textConfig.eos_token_id },
    vision_config: { model_type: 'clip_vision_model', ...p.visionConfig },
  });
  const { size, mean, std } = p.preprocess;
  writeJson(join(dir, 'preprocessor_config.json'), {
    image_processor_type: 'CLIPImageProcessor', feature_extractor_type: 'CLIPFeatureExtractor', processor_class: 'CLIPProcessor',
    do_resize: true, size: { shortest_edge: size }, resample: 2, do_center_crop: true, crop_size: { height: size, width: size },
    do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: mean, image_std: std, do_convert_rgb: true,
  });
  const present = new Set(readdirSync(p.tokenizerDir));
  for (const f of TOKENIZER_FILES) if (present.has(f)) copyFileSync(join(p.tokenizerDir, f), join(dir, f));
}
