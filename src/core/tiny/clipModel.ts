/** The tiny CLIP's shape (a small ViT and a small text transformer) and its contrastive training graph. */
import { A, GraphBuilder } from '../onnx/builder';
import { DataType, emptyGraph, makeModel, Model } from '../onnx/ir';
import { clipProjection } from '../graphs/clipEncoder';
import { ClipTextConfig, clipTextTower } from '../graphs/clipText';
import { ClipVisionConfig, clipVisionTower } from '../graphs/clipVision';
import { Net } from '../graphs/layers';
import { WeightSource } from '../graphs/weights';
import { TINY_IMAGE_SIZE } from './model';

/** Width of the shared image/text embedding space. */
export const TINY_CLIP_PROJECTION = 32;
/** CLIP's initial temperature: logit scale ln(1/0.07). */
export const LOGIT_SCALE_INIT = Math.log(1 / 0.07);
/** CLIP clamps the learned logit scale at ln(100). */
export const LOGIT_SCALE_MAX = Math.log(100);

/** The image tower: 32 px, 4 px patches (64 + 1 tokens), width 64, 3 layers, 4 heads. */
export const TINY_CLIP_VISION: ClipVisionConfig = {
  image_size: TINY_IMAGE_SIZE, patch_size: 4, num_channels: 3, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 3,
  num_attention_heads: 4, projection_dim: TINY_CLIP_PROJECTION, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, initializer_range: 0.02,
};

/** The text tower over the tiny model's caption vocabulary: width 64, 2 layers, 4 heads, `positions` tokens. */
export function tinyClipTextConfig(vocabSize: number, eosId: number, positions: number): ClipTextConfig {
  return {
    vocab_size: vocabSize, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4,
    max_position_embeddings: positions, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, eos_token_id: eosId, projection_dim: TINY_CLIP_PROJECTION,
  };
}

/** The training graph and the names of its weights (transformers' CLIPModel names, `logit_scale` included when learned). */
export interface ClipTrainingGraph {
  model: Model;
  weights: string[];
}

/**
 * Both towers in one graph over a batch of (image, caption) pairs: `pixel_values [batch,3,S,S]`, `input_ids
 * [batch,sequence]` int64, and the soft targets `image_to_text`, `text_to_image` `[batch,batch]` (rows sum to 1)
 * -> scalar `loss`, CLIP's symmetric InfoNCE. `learnTemperature` false keeps the logit scale at its initial value.
 */
export function buildClipTrainingGraph(vision: ClipVisionConfig, text: ClipTextConfig, seed: number, learnTemperature = true): ClipTrainingGraph {
  const graph = emptyGraph('tiny_clip_training');
  const b = new GraphBuilder(graph);
  const w = new WeightSource(null, seed, 'tiny CLIP');
  const net = new Net(b, w, 17);
  const S = vision.image_size;
  const pixels = b.input('pixel_values', DataType.FLOAT, ['batch', vision.num_channels ?? 3, S, S]);
  const ids = b.input('input_ids', DataType.INT64, ['batch', 'sequence']);
  const i2t = b.input('image_to_text', DataType.FLOAT, ['batch', 'batch']);
  const t2i = b.input('text_to_image', DataType.FLOAT, ['batch', 'batch']);
  const image = clipProjection(net, clipVisionTower(net, pixels, vision).pooled, 'visual_projection', vision.hidden_size, vision.projection_dim!);
  const textEmb = clipProjection(net, clipTextTower(net, ids, text).pooled, 'text_projection', text.hidden_size, text.projection_dim!);
  const scale = learnTemperature ? net.param('logit_scale', [], { kind: 'const', value: LOGIT_SCALE_INIT }) : b.scalar(LOGIT_SCALE_INIT);
  b.within('loss', () => contrastiveLoss(b, image, textEmb, scale, i2t, t2i));
  graph.outputs.push({ name: 'loss', elemType: DataType.FLOAT, shape: [] });
  return { model: makeModel(graph, 17), weights: [...w.served] };
}

/**
 * loss = -(Σ T_it ⊙ log_softmax(s·x̂ŷᵀ) + Σ T_ti ⊙ log_softmax(s·ŷx̂ᵀ)) / 2B, with x̂, ŷ the unit-length image and text
 * embeddings `[B, P]` and s = exp(logit_scale): cross-entropy against soft targets, image->text and text->image,
 * averaged. Emits value `loss`.
 */
export function contrastiveLoss(b: GraphBuilder, image: string, text: string, logitScale: string, i2t: string, t2i: string): string {
  const unit = (x: string) => b.op('Div', [x, b.op('Sqrt', [b.op('ReduceSum', [b.op('Mul', [x, x]), b.constI64([1])], { keepdims: A.i(1) })])]);
  const logits = b.op('Mul', [b.op('MatMul', [unit(image), b.op('Transpose', [unit(text)], { perm: A.ints([1, 0]) })]), b.op('Exp', [logitScale])]);
  const crossEntropy = (l: string, t: string) => b.op('ReduceSum', [b.op('Mul', [t, b.op('LogSoftmax', [l], { axis: A.i(1) })])], { keepdims: A.i(0) });
  const both = b.op('Add', [crossEntropy(logits, i2t), crossEntropy(b.op('Transpose', [logits], { perm: A.ints([1, 0]) }), t2i)]);
  const batch = b.op('Cast', [b.op('Gather', [b.op('Shape', [image]), b.constI64([0])], { axis: A.i(0) })], { to: A.i(DataType.FLOAT) });
  return b.op('Div', [both, b.op('Mul', [batch, b.scalar(-2)])], {}, { outputs: ['loss'] });
}
