/** transformers' `CLIPEncoder` (pre-LayerNorm transformer layers), shared by the CLIP text and vision towers. */
import { attention, layerNorm, linear, Net } from './layers';
import { Init } from './weights';

/** The encoder fields of transformers' CLIPTextConfig / CLIPVisionConfig (snake_case, as in config.json). */
export interface ClipEncoderConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  hidden_act?: 'quick_gelu' | 'gelu';
  layer_norm_eps?: number;
  initializer_factor?: number;
}

type LinInit = { w: Init; b: Init };
interface LayerInits { inProj: LinInit; outProj: LinInit; fc1: LinInit }

// transformers' CLIP init: normal weights, zero biases
function layerInits(c: ClipEncoderConfig): LayerInits {
  const d = c.hidden_size, L = c.num_hidden_layers, f = c.initializer_factor ?? 1;
  const zero: Init = { kind: 'const', value: 0 };
  return {
    inProj: { w: { kind: 'normal', std: d ** -0.5 * (2 * L) ** -0.5 * f }, b: zero },
    outProj: { w: { kind: 'normal', std: d ** -0.5 * f }, b: zero },
    fc1: { w: { kind: 'normal', std: (2 * d) ** -0.5 * f }, b: zero },
  };
}

/**
 * `encoder.layers.N` over `[B, S, hidden]`; `mask` (broadcastable to the attention scores) makes it causal; `states`
 * collects the input and each layer's output (transformers' `hidden_states`).
 */
export function clipEncoder(net: Net, x: string, mask: string | undefined, c: ClipEncoderConfig, states?: string[]): string {
  const init = layerInits(c);
  let h = x;
  states?.push(x);
  net.sub('encoder', () => {
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const hin = h;
      h = net.sub(`layers.${l}`, () => encoderLayer(net, hin, mask, c, init));
      states?.push(h);
    }
  });
  return h;
}

function encoderLayer(net: Net, x: string, mask: string | undefined, c: ClipEncoderConfig, init: LayerInits): string {
  const b = net.b;
  const d = c.hidden_size;
  const eps = c.layer_norm_eps ?? 1e-5;
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
function attentionWithInit(net: Net, x: string, mask: string | undefined, c: ClipEncoderConfig, init: LayerInits): string {
  net.w.preset(net.wname('q_proj.weight'), init.inProj.w);
  net.w.preset(net.wname('k_proj.weight'), init.inProj.w);
  net.w.preset(net.wname('v_proj.weight'), init.inProj.w);
  net.w.preset(net.wname('out_proj.weight'), init.outProj.w);
  for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) net.w.preset(net.wname(`${p}.bias`), init.inProj.b);
  return attention(net, x, x, c.hidden_size, {
    heads: c.num_attention_heads, qkvBias: true, mask, names: { q: 'q_proj', k: 'k_proj', v: 'v_proj', out: 'out_proj' },
  });
}

/** CLIP's `text_projection` / `visual_projection`: a bias-free Linear drawn from N(0, (in^-0.5·factor)²). */
export function clipProjection(net: Net, x: string, name: string, inF: number, outF: number, factor = 1): string {
  return linear(net, x, name, inF, outF, false, { w: { kind: 'normal', std: inF ** -0.5 * factor }, b: { kind: 'const', value: 0 } });
}
