/** Building blocks shared by the SD graph builders, emitted with the op patterns of PyTorch's TorchScript ONNX exports. */
import { A, GraphBuilder } from '../onnx/builder';
import { DataType } from '../onnx/ir';
import { Init, WeightSource } from './weights';

/** A graph under construction: node scopes and weight names follow the module path (`down_blocks.0/resnets.1` <-> `down_blocks.0.resnets.1`). */
export class Net {
  private path: string[] = [];
  private anonymous = 0;

  /** `anonymousLinears`: name MatMul weights `onnx::MatMul_<n>` as the TorchScript exporter does, instead of by module. */
  constructor(readonly b: GraphBuilder, readonly w: WeightSource, readonly opset = 17, readonly anonymousLinears = false) {}

  /** Runs `fn` inside submodule `name` (node scope `/…/name/`, weight prefix `….name.`). */
  sub<T>(name: string, fn: () => T): T {
    this.path.push(name);
    try { return this.b.within(name, fn); } finally { this.path.pop(); }
  }

  /** The state-dict name of parameter `leaf` of the current module. */
  wname(leaf: string): string {
    return [...this.path, leaf].join('.');
  }

  /** Adds parameter `leaf` (PyTorch layout, `numel` elements) as an initializer of shape `dims`; returns its name. */
  param(leaf: string, dims: number[], init: Init, data?: Float32Array): string {
    const name = this.wname(leaf);
    const values = data ?? this.w.get(name, dims.reduce((a, d) => a * d, 1), init);
    return this.b.initializer({ name, dataType: DataType.FLOAT, dims, data: values }, true);
  }

  /** Like {@link param} for a MatMul weight already in `[in, out]` layout; anonymous when the net says so. */
  matmulWeight(dims: number[], data: Float32Array): string {
    if (!this.anonymousLinears) return this.param('weight', dims, { kind: 'const', value: 0 }, data);
    return this.b.initializer({ name: `onnx::MatMul_${++this.anonymous}`, dataType: DataType.FLOAT, dims, data }, true);
  }

  /** A float32 scalar constant rounded the way PyTorch computes it in float32. */
  f32(v: number): string {
    return this.b.scalar(Math.fround(v));
  }
}

/** `Conv` with weight `[cout, cin, k, k]` and bias. */
export function conv2d(net: Net, x: string, name: string, cin: number, cout: number, k: number, stride = 1, out?: string): string {
  return net.sub(name, () => {
    const init: Init = { kind: 'uniform', fanIn: cin * k * k };
    const w = net.param('weight', [cout, cin, k, k], init);
    const bias = net.param('bias', [cout], init);
    const p = (k - 1) >> 1;
    return net.b.op('Conv', [x, w, bias], {
      dilations: A.ints([1, 1]), group: A.i(1), kernel_shape: A.ints([k, k]), pads: A.ints([p, p, p, p]), strides: A.ints([stride, stride]),
    }, out ? { outputs: [out] } : {});
  });
}

/** nn.Linear as `Gemm(transB=1)` on 2-D input (time embeddings), weight kept `[out, in]`. */
export function gemm(net: Net, x: string, name: string, inF: number, outF: number): string {
  return net.sub(name, () => {
    const init: Init = { kind: 'uniform', fanIn: inF };
    const w = net.param('weight', [outF, inF], init);
    const bias = net.param('bias', [outF], init);
    return net.b.op('Gemm', [x, w, bias], { alpha: A.f(1), beta: A.f(1), transB: A.i(1) });
  });
}

/** nn.Linear as `MatMul` with the weight stored transposed `[in, out]`, then `Add(bias, ·)`, as the exporter writes it. */
export function linear(net: Net, x: string, name: string, inF: number, outF: number, bias = true, init?: { w: Init; b: Init }): string {
  return net.sub(name, () => {
    const wT = net.w.linearT(net.wname('weight'), inF, outF, init?.w);
    const w = net.matmulWeight([inF, outF], wT);
    const y = net.b.op('MatMul', [x, w]);
    if (!bias) return y;
    const b = net.param('bias', [outF], init?.b ?? { kind: 'uniform', fanIn: inF });
    return net.b.op('Add', [b, y]);
  });
}

/** GroupNorm as Reshape -> InstanceNormalization -> Reshape -> Mul -> Add (the TorchScript export pattern). */
export function groupNorm(net: Net, x: string, name: string, channels: number, groups: number, eps: number, affineDims = [channels, 1, 1]): string {
  if (channels % groups !== 0) throw new Error(`GroupNorm ${net.wname(name)}: ${channels} channels do not split into ${groups} groups; fix norm_num_groups or the channel counts`);
  return net.sub(name, () => {
    const b = net.b;
    const r = b.op('Reshape', [x, b.constI64([0, groups, -1])], { allowzero: A.i(0) });
    const n = b.op('InstanceNormalization', [r, b.constF(new Array(groups).fill(1)), b.constF(new Array(groups).fill(0))], { epsilon: A.f(eps) });
    const back = b.op('Reshape', [n, b.op('Shape', [x])], { allowzero: A.i(0) });
    const w = net.param('weight', affineDims, { kind: 'const', value: 1 });
    const bias = net.param('bias', affineDims, { kind: 'const', value: 0 });
    return b.op('Add', [b.op('Mul', [back, w]), bias]);
  });
}

/** LayerNorm over the last axis (LayerNormalization from opset 17, the mean/variance decomposition before). */
export function layerNorm(net: Net, x: string, name: string, dim: number, eps: number): string {
  return net.sub(name, () => {
    const b = net.b;
    const w = net.param('weight', [dim], { kind: 'const', value: 1 });
    const bias = net.param('bias', [dim], { kind: 'const', value: 0 });
    if (net.opset >= 17) return b.op('LayerNormalization', [x, w, bias], { axis: A.i(-1), epsilon: A.f(eps) });
    const mean = b.op('ReduceMean', [x], { axes: A.ints([-1]) });
    const d = b.op('Sub', [x, mean]);
    const v = b.op('ReduceMean', [b.op('Pow', [d, net.f32(2)])], { axes: A.ints([-1]) });
    const nrm = b.op('Div', [d, b.op('Sqrt', [b.op('Add', [v, net.f32(eps)])])]);
    return b.op('Add', [b.op('Mul', [nrm, w]), bias]);
  });
}

/** SiLU as `x * Sigmoid(x)` under scope `name`. */
export function silu(net: Net, x: string, name: string): string {
  return net.b.within(name, () => net.b.op('Mul', [x, net.b.op('Sigmoid', [x])]));
}

/** ResnetBlock2D: norm1, SiLU, conv1, (+ time_emb_proj(SiLU(temb))), norm2, SiLU, conv2, + (shortcut) input. */
export function resnet(net: Net, x: string, tembAct: string | null, tembDim: number, name: string, cin: number, cout: number, groups: number, eps: number): string {
  // the exporter numbers SiLU calls per module: the time-embedding SiLU (shared, emitted once by the UNet) is `nonlinearity_1`
  const act2 = tembAct ? 'nonlinearity_2' : 'nonlinearity_1';
  return net.sub(name, () => {
    const b = net.b;
    let h = silu(net, groupNorm(net, x, 'norm1', cin, groups, eps), 'nonlinearity');
    h = conv2d(net, h, 'conv1', cin, cout, 3);
    if (tembAct) {
      const t = gemm(net, tembAct, 'time_emb_proj', tembDim, cout);
      h = b.op('Add', [h, b.op('Unsqueeze', [b.op('Unsqueeze', [t, b.constI64([2])]), b.constI64([3])])]);
    }
    h = silu(net, groupNorm(net, h, 'norm2', cout, groups, eps), act2);
    h = conv2d(net, h, 'conv2', cout, cout, 3);
    const skip = cin !== cout ? conv2d(net, x, 'conv_shortcut', cin, cout, 1) : x;
    return b.op('Add', [skip, h]);
  });
}

/** Options of {@link attention}. */
export interface AttentionOptions {
  heads: number;
  /** Features of the key/value input (cross-attention dim), default `dim`. */
  kvDim?: number;
  qkvBias: boolean;
  /** Additive `[S, S]`-broadcastable mask added to the scores (CLIP's causal mask). */
  mask?: string;
  names?: { q: string; k: string; v: string; out: string };
}

/** Multi-head attention on `[B, S, dim]`: q/k/v projections, head split, softmax(q·kᵀ/√d)·v, merge, output projection. */
export function attention(net: Net, x: string, kv: string, dim: number, o: AttentionOptions): string {
  const b = net.b;
  const names = o.names ?? { q: 'to_q', k: 'to_k', v: 'to_v', out: 'to_out.0' };
  const kvDim = o.kvDim ?? dim;
  if (dim % o.heads !== 0) throw new Error(`attention ${net.wname('')}: ${dim} features do not split into ${o.heads} heads; check attention_head_dim`);
  const dh = dim / o.heads;
  const q = linear(net, x, names.q, dim, dim, o.qkvBias);
  const k = linear(net, kv, names.k, kvDim, dim, o.qkvBias);
  const v = linear(net, kv, names.v, kvDim, dim, o.qkvBias);
  const split = b.constI64([0, -1, o.heads, dh]);
  // SDPA's export scales q and kᵀ by sqrt(1/sqrt(dh)) each, computed in float32.
  const s = net.f32(Math.sqrt(Math.fround(1 / Math.fround(Math.sqrt(dh)))));
  const qh = b.op('Mul', [b.op('Transpose', [b.op('Reshape', [q, split], { allowzero: A.i(0) })], { perm: A.ints([0, 2, 1, 3]) }), s]);
  const kh = b.op('Mul', [b.op('Transpose', [b.op('Reshape', [k, split], { allowzero: A.i(0) })], { perm: A.ints([0, 2, 3, 1]) }), s]);
  const vh = b.op('Transpose', [b.op('Reshape', [v, split], { allowzero: A.i(0) })], { perm: A.ints([0, 2, 1, 3]) });
  let scores = b.op('MatMul', [qh, kh]);
  if (o.mask) scores = b.op('Add', [scores, o.mask]);
  const p = b.op('Softmax', [scores], { axis: A.i(-1) });
  const ctx = b.op('Transpose', [b.op('MatMul', [p, vh])], { perm: A.ints([0, 2, 1, 3]) });
  const merged = b.op('Reshape', [ctx, b.constI64([0, -1, dim])], { allowzero: A.i(0) });
  return linear(net, merged, names.out, dim, dim, true);
}

/** GEGLU feed-forward: `net.0.proj` to 2·inner, `hidden * gelu(gate)` (erf form), `net.2` back to dim. */
export function gegluFeedForward(net: Net, x: string, dim: number, mult = 4): string {
  const inner = dim * mult;
  return net.sub('ff', () => {
    const b = net.b;
    const y = net.sub('net.0', () => {
      const p = linear(net, x, 'proj', dim, 2 * inner);
      const hidden = b.op('Slice', [p, b.constI64([0]), b.constI64([inner]), b.constI64([-1])]);
      const gate = b.op('Slice', [p, b.constI64([inner]), b.constI64([2 * inner]), b.constI64([-1])]);
      const erf = b.op('Add', [b.op('Erf', [b.op('Div', [gate, net.f32(Math.SQRT2)])]), net.f32(1)]);
      return b.op('Mul', [hidden, b.op('Mul', [b.op('Mul', [gate, erf]), net.f32(0.5)])]);
    });
    return linear(net, y, 'net.2', inner, dim);
  });
}

/** Nearest 2x `Resize` then a 3x3 conv (Upsample2D). */
export function upsample(net: Net, x: string, channels: number): string {
  return net.sub('upsamplers.0', () => {
    const r = net.b.op('Resize', [x, '', net.b.constF([1, 1, 2, 2])], {
      coordinate_transformation_mode: A.s('asymmetric'), cubic_coeff_a: A.f(-0.75), mode: A.s('nearest'), nearest_mode: A.s('floor'),
    });
    return conv2d(net, r, 'conv', channels, channels, 3);
  });
}

/** Stride-2 3x3 conv (Downsample2D). */
export function downsample(net: Net, x: string, channels: number): string {
  return net.sub('downsamplers.0', () => conv2d(net, x, 'conv', channels, channels, 3, 2));
}
