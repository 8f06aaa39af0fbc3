/**
 * Small CLIP-shaped backbone folders for tests (random weights), in the Hub layouts the loader reads: a ViT image tower
 * with `visual_projection`, transformers' CLIP text model with `text_projection`, as separate `onnx/vision_model.onnx`
 * + `onnx/text_model.onnx` or one combined `onnx/model.onnx`, with the tokenizer as vocab.json + merges.txt or tokenizer.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GraphBuilder } from '../../../../src/core/onnx/builder';
import { DataType, emptyGraph, makeModel, type Graph, type Model } from '../../../../src/core/onnx/ir';
import { saveModel } from '../../../../src/core/onnx/proto';
import { buildClipTextEncoder, type ClipTextConfig } from '../../../../src/core/graphs/clipText';
import { clipProjection } from '../../../../src/core/graphs/clipEncoder';
import { clipVisionTower } from '../../../../src/core/graphs/clipVision';
import { linear, Net } from '../../../../src/core/graphs/layers';
import { WeightSource } from '../../../../src/core/graphs/weights';

/** The embedded model's tokenizer (603 tokens, 16 positions): always in the repo. */
export const TINY_TOKENIZER = path.resolve(__dirname, '../../../../media/tiny-model/tokenizer');

/** A ViT image tower's size. */
export interface VisionSize { image: number; patch: number; hidden: number; layers: number; heads: number; mlp: number }

/** What a test folder holds. */
export interface TestClipOptions {
  vision?: VisionSize;
  text?: Pick<ClipTextConfig, 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads'> & { vocab_size?: number; max_position_embeddings?: number; eos_token_id?: number };
  /** Width of both embeddings (default 16). */
  proj?: number;
  /** Text tower width (default `proj`): another width makes towers that do not share a space. */
  textProj?: number;
  towers?: 'separate' | 'combined' | 'image-only' | 'plain';
  tokenizer?: 'vocab' | 'json' | 'none';
  /** Folder of vocab.json + merges.txt + tokenizer_config.json (default the embedded model's). */
  tokenizerDir?: string;
  /** Write config.json with `text_config.vocab_size` (default true). */
  config?: boolean;
  seed?: number;
}

/** A small vision size (32 px, 16 patches). */
export const TINY_VISION: VisionSize = { image: 32, patch: 8, hidden: 32, layers: 1, heads: 4, mlp: 64 };

/** Adds a ViT image tower `pixel_values [batch,3,S,S]` -> `image_embeds [batch,proj]` to `graph` (CLIPVisionModelWithProjection's shape), built by the product's own tower. */
export function addVisionTower(graph: Graph, v: VisionSize, proj: number, seed: number): void {
  const b = new GraphBuilder(graph);
  const net = new Net(b, new WeightSource(null, seed, 'test vision tower'));
  const pixels = b.input('pixel_values', DataType.FLOAT, ['batch', 3, v.image, v.image]);
  const { pooled } = clipVisionTower(net, pixels, {
    image_size: v.image, patch_size: v.patch, hidden_size: v.hidden, intermediate_size: v.mlp, num_hidden_layers: v.layers, num_attention_heads: v.heads,
  });
  b.op('Identity', [clipProjection(net, pooled, 'visual_projection', v.hidden, proj)], {}, { outputs: ['image_embeds'] });
  graph.outputs.push({ name: 'image_embeds', elemType: DataType.FLOAT, shape: ['batch', proj] });
}

/** transformers' CLIPTextModelWithProjection: `input_ids` (int64) -> `text_embeds [batch,proj]` (and `last_hidden_state`). */
export function buildTextTower(cfg: ClipTextConfig, proj: number, seed: number): Model {
  const model = buildClipTextEncoder(cfg, { seed, inputIds: 'int64' });
  const b = new GraphBuilder(model.graph);
  const net = new Net(b, new WeightSource(null, seed + 1, 'test text projection'));
  b.op('Identity', [linear(net, 'pooler_output', 'text_projection', cfg.hidden_size, proj, false)], {}, { outputs: ['text_embeds'] });
  model.graph.outputs = model.graph.outputs.filter((o) => o.name !== 'pooler_output');
  model.graph.outputs.push({ name: 'text_embeds', elemType: DataType.FLOAT, shape: ['batch', proj] });
  return model;
}

/** The text config of a test folder (the embedded tokenizer's 603 tokens and 16 positions unless told). */
export function textConfig(o: TestClipOptions): ClipTextConfig {
  return {
    vocab_size: 603, max_position_embeddings: 16, eos_token_id: 602, hidden_act: 'quick_gelu',
    hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, ...o.text,
  };
}

/** Writes a backbone folder into `dir` (see TestClipOptions); returns `dir`. */
export function writeTestClipFolder(dir: string, o: TestClipOptions = {}): string {
  const vision = o.vision ?? TINY_VISION, proj = o.proj ?? 16, seed = o.seed ?? 1, towers = o.towers ?? 'separate';
  const text = textConfig(o);
  fs.mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  if (towers === 'combined') {
    const model = buildTextTower(text, o.textProj ?? proj, seed);
    model.graph.inputs.push({ name: 'attention_mask', elemType: DataType.INT64, shape: ['batch', 'sequence'] });
    addVisionTower(model.graph, vision, proj, seed + 7);
    saveModel(model, path.join(dir, 'onnx', 'model.onnx'));
  } else {
    const g = emptyGraph('vision_model');
    addVisionTower(g, vision, proj, seed + 7);
    saveModel(makeModel(g, 17), path.join(dir, towers === 'plain' ? 'model.onnx' : 'onnx/vision_model.onnx'));
    if (towers === 'separate') saveModel(buildTextTower(text, o.textProj ?? proj, seed), path.join(dir, 'onnx', 'text_model.onnx'));
  }
  if (towers === 'plain') fs.rmSync(path.join(dir, 'onnx'), { recursive: true });
  if (o.config ?? true) {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'clip', projection_dim: proj, text_config: text, vision_config: { image_size: vision.image, patch_size: vision.patch } }));
  }
  fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ crop_size: { height: vision.image, width: vision.image }, size: { shortest_edge: vision.image }, resample: 3 }));
  writeTokenizer(dir, o.tokenizer ?? 'vocab', o.tokenizerDir ?? TINY_TOKENIZER);
  return dir;
}

function writeTokenizer(dir: string, format: 'vocab' | 'json' | 'none', from: string): void {
  if (format === 'none') return;
  fs.copyFileSync(path.join(from, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  if (format === 'vocab') {
    for (const f of ['vocab.json', 'merges.txt']) fs.copyFileSync(path.join(from, f), path.join(dir, f));
    return;
  }
  const merges = fs.readFileSync(path.join(from, 'merges.txt'), 'utf8').split('\n').filter((l, i) => l.trim() && !(i === 0 && l.startsWith('#version')));
  const vocab = JSON.parse(fs.readFileSync(path.join(from, 'vocab.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab, merges: merges.map((m) => m.split(' ')) } }));
}
