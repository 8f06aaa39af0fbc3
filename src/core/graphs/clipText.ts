/** Builds a transformers `CLIPTextModel` (SD's text encoder) as an ONNX graph shaped like the public exports. */
import { A, GraphBuilder } from '../onnx/builder';
import { DataType, emptyGraph, makeModel, Model } from '../onnx/ir';
import { clipEncoder, ClipEncoderConfig, clipProjection } from './clipEncoder';
import { layerNorm, Net } from './layers';
import { StateDict, WeightSource } from './weights';

/** The subset of transformers' CLIPTextConfig the builder reads (snake_case, as in config.json). */
export interface ClipTextConfig extends ClipEncoderConfig {
  vocab_size: number;
  max_position_embeddings: number;
  /** The pooler takes the first position holding this id; 2 (old configs) means "the largest id", as transformers does. */
  eos_token_id?: number;
  /** Width of `text_embeds` in a CLIP backbone's config.json (the builder's `projectionDim` option adds the projection). */
  projection_dim?: number;
}

/** Options of {@link buildClipTextEncoder}. */
export interface ClipBuildOptions {
  /** Name linear weights `onnx::MatMul_<n>` like the TorchScript exporter (default: by diffusers/transformers module name). */
  anonymousLinears?: boolean;
  weights?: 'random' | StateDict;
  seed?: number;
  /** Element type of `input_ids` (int32 like the optimum exports, default). */
  inputIds?: 'int32' | 'int64';
  opset?: number;
  /** CLIPTextModelWithProjection (SDXL's second text encoder, a CLIP backbone's text tower): a `text_embeds [batch, projectionDim]` output, the pooled state projected without bias. */
  projectionDim?: number;
  /** Every layer's hidden state as `hidden_states.0` (embeddings) .. `hidden_states.L`, as optimum exports SDXL's encoders. */
  hiddenStates?: boolean;
}

/**
 * Builds `input_ids [batch, sequence]` -> `last_hidden_state [batch, sequence, hidden]`, `pooler_output [batch, hidden]`
 * (or, with a projection, `text_embeds [batch, projectionDim]` first, as CLIPTextModelWithProjection), and the hidden states when asked.
 */
export function buildClipTextEncoder(config: ClipTextConfig, opts: ClipBuildOptions = {}): Model {
  const d = config.hidden_size;
  const graph = emptyGraph('text_encoder');
  const b = new GraphBuilder(graph);
  const w = new WeightSource(opts.weights && opts.weights !== 'random' ? opts.weights : null, opts.seed ?? 0, 'buildClipTextEncoder');
  const net = new Net(b, w, opts.opset ?? 17, opts.anonymousLinears ?? false);
  const ids = b.input('input_ids', opts.inputIds === 'int64' ? DataType.INT64 : DataType.INT32, ['batch', 'sequence']);
  const states: string[] = [];
  const { last, pooled } = clipTextTower(net, ids, config, opts.hiddenStates ? states : undefined);
  renameValue(graph.nodes, last, 'last_hidden_state');
  states.forEach((v, k) => b.op('Identity', [v], {}, { outputs: [`hidden_states.${k}`] }));
  if (opts.projectionDim) {
    const embeds = clipProjection(net, pooled, 'text_projection', d, opts.projectionDim, config.initializer_factor);
    renameValue(graph.nodes, embeds, 'text_embeds');
    graph.outputs.push({ name: 'text_embeds', elemType: DataType.FLOAT, shape: ['batch', opts.projectionDim] });
    graph.outputs.push({ name: 'last_hidden_state', elemType: DataType.FLOAT, shape: ['batch', 'sequence', d] });
  } else {
    renameValue(graph.nodes, pooled, 'pooler_output');
    graph.outputs.push({ name: 'last_hidden_state', elemType: DataType.FLOAT, shape: ['batch', 'sequence', d] });
    graph.outputs.push({ name: 'pooler_output', elemType: DataType.FLOAT, shape: ['batch', d] });
  }
  for (let k = 0; k < states.length; k++) graph.outputs.push({ name: `hidden_states.${k}`, elemType: DataType.FLOAT, shape: ['batch', 'sequence', d] });
  const model = makeModel(graph, opts.opset ?? 17);
  model.metadata = { source: 'ddpo-studio buildClipTextEncoder', config: JSON.stringify(config), parameters: String(w.params) };
  return model;
}

/**
 * The `text_model` module on integer `ids [batch, sequence]`: embeddings, causal encoder, final LayerNorm (`last`), and
 * the hidden state at each row's first eos token (`pooled`); `states` collects the embeddings and each layer's output.
 * Returns value names, so two towers can share one graph.
 */
export function clipTextTower(net: Net, ids: string, config: ClipTextConfig, states?: string[]): { last: string; pooled: string } {
  const b = net.b;
  const d = config.hidden_size;
  const f = config.initializer_factor ?? 1;
  return net.sub('text_model', () => {
    const seqLen = b.op('Gather', [b.op('Shape', [ids]), b.scalar(1, DataType.INT64)], { axis: A.i(0) });
    const h0 = net.sub('embeddings', () => {
      const tok = net.sub('token_embedding', () =>
        b.op('Gather', [net.param('weight', [config.vocab_size, d], { kind: 'normal', std: 0.02 * f }), ids]));
      const positions = b.op('Slice', [
        b.constI64(Array.from({ length: config.max_position_embeddings }, (_, i) => i), [1, config.max_position_embeddings]),
        b.constI64([0]), b.op('Unsqueeze', [seqLen, b.constI64([0])]), b.constI64([1]),
      ]);
      const pos = net.sub('position_embedding', () =>
        b.op('Gather', [net.param('weight', [config.max_position_embeddings, d], { kind: 'normal', std: 0.02 * f }), positions]));
      return b.op('Add', [tok, pos]);
    });
    // causal mask [S, S]: 0 where key <= query, -inf above the diagonal
    const r = b.op('Range', [b.scalar(0, DataType.INT64), seqLen, b.scalar(1, DataType.INT64)]);
    const allowed = b.op('LessOrEqual', [b.op('Unsqueeze', [r, b.constI64([0])]), b.op('Unsqueeze', [r, b.constI64([1])])]);
    const mask = b.op('Where', [allowed, b.scalar(0), b.scalar(-Infinity)]);
    const h = clipEncoder(net, h0, mask, config, states);
    const last = layerNorm(net, h, 'final_layer_norm', d, config.layer_norm_eps ?? 1e-5);
    // pooler: hidden state at the first eos position of each row
    const ids64 = b.op('Cast', [ids], { to: A.i(DataType.INT64) });
    const eosHit = config.eos_token_id === 2 || config.eos_token_id === undefined
      ? b.op('Cast', [ids64], { to: A.i(DataType.INT32) })
      : b.op('Cast', [b.op('Equal', [ids64, b.scalar(config.eos_token_id, DataType.INT64)])], { to: A.i(DataType.INT32) });
    const at = b.op('ArgMax', [eosHit], { axis: A.i(-1), keepdims: A.i(1), select_last_index: A.i(0) });
    return { last, pooled: b.op('GatherND', [last, at], { batch_dims: A.i(1) }) };
  });
}

/** Renames value `from` to `to` in node outputs and inputs. */
export function renameValue(nodes: { inputs: string[]; outputs: string[] }[], from: string, to: string): void {
  for (const n of nodes) {
    n.outputs = n.outputs.map((o) => (o === from ? to : o));
    n.inputs = n.inputs.map((i) => (i === from ? to : i));
  }
}
