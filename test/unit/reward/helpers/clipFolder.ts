/**
 * Small CLIP-shaped backbone folders for tests (random weights), in the Hub layouts the loader reads: a ViT image tower
 * with `visual_projection`, transformers' CLIP text model with `text_projection`, as separate `onnx/vision_model.onnx`
 * + `onnx/text_model.onnx` or one combined `onnx/model.onnx`, with the tokenizer as vocab.json + merges.txt or tokenizer.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { A, GraphBuilder } from '../../../../src/core/onnx/builder';
import { DataType, emptyGraph, makeModel, type Graph, type Model } from '../../../../src/core/onnx/ir';
import { saveModel } from '../../../../src/core/onnx/proto';
import { buildClipTextEncoder, type ClipTextConfig } from '../../../../src/core/graphs/clipText';
import { attention, layerNorm, linear, Net } from '../../../../src/core/graphs/layers';
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

const QUICK_GELU = (b: GraphBuilder, u: string) => b.op('Mul', [u, b.op('Sigmoid', [b.op('Mul', [u, b.scalar(1.702)])])]);

/** Adds a ViT image tower `pixel_values [batch,3,S,S]` -> `image_embeds [batch,proj]` to `graph` (CLIPVisionModelWithProjection's shape). */
export function addVisionTower(graph: Graph, v: VisionSize, proj: number, seed: number): void {
  const b = new GraphBuilder(graph);
  const net = new Net(b, new WeightSource(null, seed, 'test vision tower'));
  const d = v.hidden, tokens = (v.image / v.patch) ** 2 + 1;
  const pixels = b.input('pixel_values', DataType.FLOAT, ['batch', 3, v.image, v.image]);
  const pooled = net.sub('vision_model', () => {
    const conv = b.op('Conv', [pixels, net.param('embeddings.patch_embedding.weight', [d, 3, v.patch, v.patch], { kind: 'normal', std: 0.02 })], {
      kernel_shape: A.ints([v.patch, v.patch]), strides: A.ints([v.patch, v.patch]),
    });
    const patches = b.op('Transpose', [b.op('Reshape', [conv, b.constI64([0, d, -1])])], { perm: A.ints([0, 2, 1]) });
    const batch = b.op('Gather', [b.op('Shape', [pixels]), b.constI64([0])], { axis: A.i(0) });
    const cls = b.op('Expand', [net.param('embeddings.class_embedding', [d], { kind: 'normal', std: 0.5 }), b.op('Concat', [batch, b.constI64([1, d])], { axis: A.i(0) })]);
    let h = b.op('Add', [b.op('Concat', [cls, patches], { axis: A.i(1) }), net.param('embeddings.position_embedding.weight', [tokens, d], { kind: 'normal', std: 0.02 })]);
    h = layerNorm(net, h, 'pre_layrnorm', d, 1e-5);
    for (let l = 0; l < v.layers; l++) {
      const x = h;
      h = net.sub(`encoder.layers.${l}`, () => {
        const n1 = layerNorm(net, x, 'layer_norm1', d, 1e-5);
        const a = net.sub('self_attn', () => attention(net, n1, n1, d, { heads: v.heads, qkvBias: true, names: { q: 'q_proj', k: 'k_proj', v: 'v_proj', out: 'out_proj' } }));
        const r = b.op('Add', [x, a]);
        const m = net.sub('mlp', () => linear(net, QUICK_GELU(b, linear(net, layerNorm(net, r, 'layer_norm2', d, 1e-5), 'fc1', d, v.mlp)), 'fc2', v.mlp, d));
        return b.op('Add', [r, m]);
      });
    }
    return layerNorm(net, b.op('Gather', [h, b.scalar(0, DataType.INT64)], { axis: A.i(1) }), 'post_layernorm', d, 1e-5);
  });
  const embeds = linear(net, pooled, 'visual_projection', d, proj, false);
  b.op('Identity', [embeds], {}, { outputs: ['image_embeds'] });
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
