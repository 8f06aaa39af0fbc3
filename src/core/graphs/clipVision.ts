/** Builds transformers' `CLIPVisionModelWithProjection` (a ViT image tower) as an ONNX graph like the public exports. */
import { A, GraphBuilder } from '../onnx/builder';
import { DataType, emptyGraph, makeModel, Model } from '../onnx/ir';
import { renameValue } from './clipText';
import { clipEncoder, ClipEncoderConfig, clipProjection } from './clipEncoder';
import { layerNorm, Net } from './layers';
import { StateDict, WeightSource } from './weights';

/** The subset of transformers' CLIPVisionConfig the builder reads (snake_case, as in config.json). */
export interface ClipVisionConfig extends ClipEncoderConfig {
  image_size: number;
  patch_size: number;
  num_channels?: number;
  /** Width of `image_embeds`; without it the model has no `visual_projection` and outputs `pooler_output`. */
  projection_dim?: number;
  initializer_range?: number;
}

/** Options of {@link buildClipVisionModel}. */
export interface ClipVisionBuildOptions {
  weights?: 'random' | StateDict;
  seed?: number;
  opset?: number;
}

/**
 * Builds `pixel_values [batch, 3, S, S]` -> `image_embeds [batch, projection_dim]` (or `pooler_output` without a
 * projection) and `last_hidden_state [batch, 1 + (S/patch)², hidden]`, the outputs transformers.js's
 * `vision_model.onnx` has. Weights by transformers name (`vision_model.…`, `visual_projection.weight`).
 */
export function buildClipVisionModel(config: ClipVisionConfig, opts: ClipVisionBuildOptions = {}): Model {
  const graph = emptyGraph('vision_model');
  const b = new GraphBuilder(graph);
  const w = new WeightSource(opts.weights && opts.weights !== 'random' ? opts.weights : null, opts.seed ?? 0, 'buildClipVisionModel');
  const net = new Net(b, w, opts.opset ?? 17);
  const S = config.image_size, d = config.hidden_size;
  const pixels = b.input('pixel_values', DataType.FLOAT, ['batch', config.num_channels ?? 3, S, S]);
  const { last, pooled } = clipVisionTower(net, pixels, config);
  renameValue(graph.nodes, last, 'last_hidden_state');
  if (config.projection_dim) {
    const embeds = clipProjection(net, pooled, 'visual_projection', d, config.projection_dim, config.initializer_factor);
    renameValue(graph.nodes, embeds, 'image_embeds');
    graph.outputs.push({ name: 'image_embeds', elemType: DataType.FLOAT, shape: ['batch', config.projection_dim] });
  } else {
    renameValue(graph.nodes, pooled, 'pooler_output');
    graph.outputs.push({ name: 'pooler_output', elemType: DataType.FLOAT, shape: ['batch', d] });
  }
  graph.outputs.push({ name: 'last_hidden_state', elemType: DataType.FLOAT, shape: ['batch', 1 + (S / config.patch_size) ** 2, d] });
  const model = makeModel(graph, opts.opset ?? 17);
  model.metadata = { source: 'ddpo-studio buildClipVisionModel', config: JSON.stringify(config), parameters: String(w.params) };
  return model;
}

/**
 * The `vision_model` module on `pixels [batch, C, S, S]`: patch embedding (a stride-`patch` Conv without bias), the class
 * token in front, position embeddings, `pre_layrnorm` (transformers' spelling), the encoder (`last`), and `post_layernorm`
 * of the class token (`pooled`). Returns value names, so two towers can share one graph.
 */
export function clipVisionTower(net: Net, pixels: string, c: ClipVisionConfig): { last: string; pooled: string } {
  const b = net.b;
  const d = c.hidden_size, p = c.patch_size, ch = c.num_channels ?? 3;
  if (c.image_size % p !== 0) throw new Error(`CLIP vision config: image_size ${c.image_size} is not a multiple of patch_size ${p}`);
  const tokens = (c.image_size / p) ** 2 + 1;
  const f = c.initializer_factor ?? 1, range = c.initializer_range ?? 0.02;
  const eps = c.layer_norm_eps ?? 1e-5;
  return net.sub('vision_model', () => {
    const h0 = net.sub('embeddings', () => {
      const conv = net.sub('patch_embedding', () => b.op('Conv', [pixels, net.param('weight', [d, ch, p, p], { kind: 'normal', std: range * f })], {
        dilations: A.ints([1, 1]), group: A.i(1), kernel_shape: A.ints([p, p]), pads: A.ints([0, 0, 0, 0]), strides: A.ints([p, p]),
      }));
      const patches = b.op('Transpose', [b.op('Reshape', [conv, b.constI64([0, d, -1])], { allowzero: A.i(0) })], { perm: A.ints([0, 2, 1]) });
      const batch = b.op('Gather', [b.op('Shape', [pixels]), b.constI64([0])], { axis: A.i(0) });
      const cls = b.op('Expand', [
        net.param('class_embedding', [d], { kind: 'normal', std: d ** -0.5 * f }),
        b.op('Concat', [batch, b.constI64([1, d])], { axis: A.i(0) }),
      ]);
      const seq = b.op('Concat', [cls, patches], { axis: A.i(1) });
      const pos = net.sub('position_embedding', () => net.param('weight', [tokens, d], { kind: 'normal', std: range * f }));
      return b.op('Add', [seq, pos]);
    });
    const h = clipEncoder(net, layerNorm(net, h0, 'pre_layrnorm', d, eps), undefined, c);
    const first = b.op('Gather', [h, b.scalar(0, DataType.INT64)], { axis: A.i(1) });
    return { last: h, pooled: layerNorm(net, first, 'post_layernorm', d, eps) };
  });
}
