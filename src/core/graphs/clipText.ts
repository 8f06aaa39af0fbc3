/** Builds a transformers `CLIPTextModel` (SD's text encoder) as an ONNX graph shaped like the public exports. */
import { A, GraphBuilder } from '../onnx/builder';
import { DataType, emptyGraph, makeModel, Model } from '../onnx/ir';
import { attention, layerNorm, linear, Net } from './layers';
import { Init, StateDict, WeightSource } from './weights';

/** The subset of transformers' CLIPTextConfig the builder reads (snake_case, as in config.json). */
export interface ClipTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act?: 'quick_gelu' | 'gelu';
  layer_norm_eps?: number;
  /** The pooler takes the first position holding this id; 2 (old configs) means "the largest id", as transformers does. */
  eos_token_id?: number;
  initializer_factor?: number;
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
  /** CLIPTextModelWithProjection (SDXL's second text encoder): a `text_embeds [batch, projectionDim]` output, the pooled state projected without bias. */
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
  const L = config.num_hidden_layers;
  const eps = config.layer_norm_eps ?? 1e-5;
  const f = config.initializer_factor ?? 1;
  const graph = emptyGraph('text_encoder');
  const b = new GraphBuilder(graph);
  const w = new WeightSource(opts.weights && opts.weights !== 'random' ? opts.weights : null, opts.seed ?? 0, 'buildClipTextEncoder');
  const net = new Net(b, w, opts.opset ?? 17, opts.anonymousLinears ?? false);
  const ids = b.input('input_ids', opts.inputIds === 'int64' ? DataType.INT64 : DataType.INT32, ['batch', 'sequence']);
  // transformers' CLIP init: normal weights, zero biases
  const zero: Init = { kind: 'const', value: 0 };
  const inProj = { w: { kind: 'normal', std: d ** -0.5 * (2 * L) ** -0.5 * f } as Init, b: zero };
  const outProj = { w: { kind: 'normal', std: d ** -0.5 * f } as Init, b: zero };
  const fc1 = { w: { kind: 'normal', std: (2 * d) ** -0.5 * f } as Init, b: zero };

  let last = '';
  net.sub('text_model', () => {
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
    let h = h0;
    const states = [h0];
    net.sub('encoder', () => {
      for (let l = 0; l < L; l++) {
        const hin = h;
        h = net.sub(`layers.${l}`, () => encoderLayer(net, hin, mask, config, eps, { inProj, outProj, fc1 }));
        states.push(h);
      }
    });
    if (opts.hiddenStates) states.forEach((v, k) => b.op('Identity', [v], {}, { outputs: [`hidden_states.${k}`] }));
    last = layerNorm(net, h, 'final_layer_norm', d, eps);
    renameValue(graph.nodes, last, 'last_hidden_state');
    last = 'last_hidden_state';
    // pooler: hidden state at the first eos position of each row
    const ids64 = b.op('Cast', [ids], { to: A.i(DataType.INT64) });
    const eosHit = config.eos_token_id === 2 || config.eos_token_id === undefined
      ? b.op('Cast', [ids64], { to: A.i(DataType.INT32) })
      : b.op('Cast', [b.op('Equal', [ids64, b.scalar(config.eos_token_id, DataType.INT64)])], { to: A.i(DataType.INT32) });
    const at = b.op('ArgMax', [eosHit], { axis: A.i(-1), keepdims: A.i(1), select_last_index: A.i(0) });
    const pooled = b.op('GatherND', [last, at], { batch_dims: A.i(1) }, { outputs: ['pooler_output'] });
    if (opts.projectionDim) {
      const w = net.w.linearT('text_projection.weight', d, opts.projectionDim, { kind: 'normal', std: d ** -0.5 * f });
      b.op('MatMul', [pooled, b.initializer({ name: 'text_projection.weight', dataType: DataType.FLOAT, dims: [d, opts.projectionDim], data: w }, true)], {}, { outputs: ['text_embeds'], name: '/text_projection/MatMul' });
    }
  });
  if (opts.projectionDim) graph.outputs.push({ name: 'text_embeds', elemType: DataType.FLOAT, shape: ['batch', opts.projectionDim] });
  graph.outputs.push({ name: 'last_hidden_state', elemType: DataType.FLOAT, shape: ['batch', 'sequence', d] });
  if (!opts.projectionDim) graph.outputs.push({ name: 'pooler_output', elemType: DataType.FLOAT, shape: ['batch', d] });
  if (opts.hiddenStates) for (let k = 0; k <= L; k++) graph.outputs.push({ name: `hidden_states.${k}`, elemType: DataType.FLOAT, shape: ['batch', 'sequence', d] });
  const model = makeModel(graph, opts.opset ?? 17);
  model.metadata = { source: 'ddpo-studio buildClipTextEncoder', config: JSON.stringify(config), parameters: String(w.params) };
  return model;
}

type LinInit = { w: Init; b: Init };

function encoderLayer(net: Net, x: string, mask: string, c: ClipTextConfig, eps: number, init: { inProj: LinInit; outProj: LinInit; fc1: LinInit }): string {
  const b = net.b;
  const d = c.hidden_size;
  const n1 = layerNorm(net, x, 'layer_norm1', d, eps);
  const a = net.sub('self_attn', () => attentionWithInit(net, n1, mask, c, init));
  const h = b.op('Add', [x, a]);
  const n2 = layerNorm(net, h, 'layer_norm2', d, eps);
  const m = net.sub('mlp', () => {
    const u = linear(net, n2, 'fc1', d, c.intermediate_size, true, init.fc1);
    const act = b.within('activation_fn', () => c.hidden_act === 'gelu'
      ? b.op('Mul', [b.op('Mul', [u, b.op('Add', [b.op('Erf', [b.op('Div', [u, net.f32(Math.SQRT2)])]), net.f32(1)])]), net.f32(0.5)])
      : b.op('Mul', [u, b.op('Sigmoid', [b.op('Mul', [u, net.f32(1.702)])])]));
    return linear(net, act, 'fc2', c.intermediate_size, d, true, init.inProj);
  });
  return b.op('Add', [h, m]);
}

// attention() would draw the layer-default uniform init; CLIP draws its projections from normals, so set those per tensor first
function attentionWithInit(net: Net, x: string, mask: string, c: ClipTextConfig, init: { inProj: LinInit; outProj: LinInit }): string {
  net.w.preset(net.wname('q_proj.weight'), init.inProj.w);
  net.w.preset(net.wname('k_proj.weight'), init.inProj.w);
  net.w.preset(net.wname('v_proj.weight'), init.inProj.w);
  net.w.preset(net.wname('out_proj.weight'), init.outProj.w);
  for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) net.w.preset(net.wname(`${p}.bias`), init.inProj.b);
  return attention(net, x, x, c.hidden_size, {
    heads: c.num_attention_heads, qkvBias: true, mask, names: { q: 'q_proj', k: 'k_proj', v: 'v_proj', out: 'out_proj' },
  });
}

/** Renames value `from` to `to` in node outputs and inputs. */
export function renameValue(nodes: { inputs: string[]; outputs: string[] }[], from: string, to: string): void {
  for (const n of nodes) {
    n.outputs = n.outputs.map((o) => (o === from ? to : o));
    n.inputs = n.inputs.map((i) => (i === from ? to : i));
  }
}
