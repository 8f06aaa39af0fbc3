/**
 * The reference UNet as onnxruntime's transformer optimizer writes a Stable Diffusion UNet for CUDA: attention as
 * com.microsoft MultiHeadAttention (packed q/k/v and k/v) or Attention, GroupNorm (+SiLU) and SkipGroupNorm in NHWC,
 * NhwcConv, SkipLayerNormalization, BiasSplitGelu and BiasAdd. Same weights, same math.
 */
import { A, GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, Model, Node, Tensor, cloneModel, toNumbers, topoSort } from '../../../src/core/onnx/ir';
import { eliminateDeadNodes } from '../../../src/core/onnx/dce';
import { GraphIndex } from '../../../src/core/train/graphIndex';
import { findAttentions } from '../../../src/core/train/attentionPattern';

const MS = { domain: 'com.microsoft' };

interface Rewrite { m: Model; b: GraphBuilder; producer: Map<string, Node>; consumers: Map<string, Node[]>; drop: Set<Node> }

function start(model: Model): Rewrite {
  const m = cloneModel(model);
  if (!m.opsetImports.some((o) => o.domain === 'com.microsoft')) m.opsetImports.push({ domain: 'com.microsoft', version: 1 });
  const producer = new Map<string, Node>(), consumers = new Map<string, Node[]>();
  for (const n of m.graph.nodes) {
    n.outputs.forEach((o) => producer.set(o, n));
    n.inputs.forEach((i) => { if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]); });
  }
  return { m, b: new GraphBuilder(m.graph), producer, consumers, drop: new Set() };
}

function finish(r: Rewrite): Model {
  r.m.graph.nodes = r.m.graph.nodes.filter((n) => !r.drop.has(n));
  r.m.graph.nodes = topoSort(r.m.graph);
  eliminateDeadNodes(r.m.graph);
  return r.m;
}

function constOf(r: Rewrite, v: string): Tensor | undefined {
  for (let hops = 0; hops < 8; hops++) {
    const t = r.m.graph.initializers.get(v);
    if (t) return t;
    const p = r.producer.get(v);
    if (p?.opType === 'Constant' && p.attrs.value?.type === 'tensor') return p.attrs.value.value;
    if (p?.opType !== 'Identity') return undefined;
    v = p.inputs[0];
  }
  return undefined;
}

// the data readers of a value (Shape queries die with the rewrite)
function readers(r: Rewrite, v: string): Node[] {
  return (r.consumers.get(v) ?? []).filter((n) => n.opType !== 'Shape' && !r.drop.has(n));
}

function only(r: Rewrite, v: string, op: string): Node | undefined {
  const c = readers(r, v);
  return c.length === 1 && c[0].opType === op ? c[0] : undefined;
}

// [C, N·H] weights interleaved per head as onnxruntime packs them: [C, N, P, H]
function interleave(ws: Tensor[], heads: number): Float32Array {
  const [C, D] = ws[0].dims, H = D / heads, P = ws.length;
  const out = new Float32Array(C * D * P);
  for (let c = 0; c < C; c++) for (let n = 0; n < heads; n++) for (let p = 0; p < P; p++) for (let h = 0; h < H; h++) out[c * D * P + (n * P + p) * H + h] = (ws[p].data as Float32Array)[c * D + n * H + h];
  return out;
}

function sideBySide(ws: Tensor[]): Float32Array {
  const [C, D] = ws[0].dims, P = ws.length;
  const out = new Float32Array(C * D * P);
  for (let c = 0; c < C; c++) for (let p = 0; p < P; p++) out.set((ws[p].data as Float32Array).subarray(c * D, (c + 1) * D), c * D * P + p * D);
  return out;
}

/** Attention cores as MultiHeadAttention with packed q/k/v (self) and k/v (cross), or as Attention (self) and MultiHeadAttention on separate q, k, v (cross). */
export function withFusedAttention(model: Model, heads: number, packed: boolean): Model {
  const r = start(model);
  const { b } = r;
  for (const site of findAttentions(new GraphIndex(r.m.graph))) {
    if (!site.out) continue;
    const out = site.out.node.inputs[0];
    r.drop.add(r.producer.get(out)!);
    const D = site.q.outFeatures, H = D / heads;
    if (site.selfAttention && packed) {
      const w = b.initializer({ name: 'qkv_weight', dataType: DataType.FLOAT, dims: [site.q.inFeatures, 3 * D], data: interleave([site.q.weight, site.k.weight, site.v.weight], heads) });
      const qkv = b.op('Reshape', [b.op('MatMul', [site.q.node.inputs[0], w], {}, { name: 'MatMul_QKV' }), b.constI64([0, 0, heads, 3, H])]);
      b.op('MultiHeadAttention', [qkv], { num_heads: A.i(heads) }, { ...MS, outputs: [out], name: 'MultiHeadAttention' });
    } else if (site.selfAttention) {
      const w = b.initializer({ name: 'qkv_weight', dataType: DataType.FLOAT, dims: [site.q.inFeatures, 3 * D], data: sideBySide([site.q.weight, site.k.weight, site.v.weight]) });
      b.op('Attention', [site.q.node.inputs[0], w, b.constF(new Array(3 * D).fill(0))], { num_heads: A.i(heads) }, { ...MS, outputs: [out], name: 'Attention' });
    } else if (packed) {
      const w = b.initializer({ name: 'kv_weight', dataType: DataType.FLOAT, dims: [site.k.inFeatures, 2 * D], data: interleave([site.k.weight, site.v.weight], heads) });
      const kv = b.op('Reshape', [b.op('MatMul', [site.k.node.inputs[0], w], {}, { name: 'MatMul_KV' }), b.constI64([0, 0, heads, 2, H])]);
      b.op('MultiHeadAttention', [site.q.node.outputs[0], kv], { num_heads: A.i(heads) }, { ...MS, outputs: [out], name: 'MultiHeadAttention' });
    } else {
      b.op('MultiHeadAttention', [site.q.node.outputs[0], site.k.node.outputs[0], site.v.node.outputs[0], b.constF(new Array(3 * D).fill(0))], { num_heads: A.i(heads) }, { ...MS, outputs: [out], name: 'MultiHeadAttention' });
    }
  }
  return finish(r);
}

/**
 * TorchScript's GroupNorm pattern as NHWC GroupNorm between Transposes (SiLU folded in as its activation), and, where the
 * normalised value is a resnet's sum with the time embedding, as SkipGroupNorm with the embedding's [N, C] as its skip.
 */
export function withFusedGroupNorm(model: Model): Model {
  const r = start(model);
  const { b, m } = r;
  for (const inorm of [...m.graph.nodes]) {
    if (inorm.opType !== 'InstanceNormalization') continue;
    const r1 = r.producer.get(inorm.inputs[0]);
    const r2 = only(r, inorm.outputs[0], 'Reshape');
    const mul = r2 && only(r, r2.outputs[0], 'Mul');
    const add = mul && only(r, mul.outputs[0], 'Add');
    const target = r1 && constOf(r, r1.inputs[1]);
    const scale = mul && constOf(r, mul.inputs[1]), bias = add && constOf(r, add.inputs[1]);
    if (!r1 || !add || !target || !scale || !bias) continue;
    const C = scale.dims[0];
    const gamma = b.initializer({ ...scale, name: 'gamma', dims: [C] }), beta = b.initializer({ ...bias, name: 'beta', dims: [C] });
    const after = readers(r, add.outputs[0]);
    const sig = after.find((n) => n.opType === 'Sigmoid');
    const silu = sig && after.length === 2 ? after.find((n) => n.opType === 'Mul' && n.inputs.includes(sig.outputs[0])) : undefined;
    const out = silu ? silu.outputs[0] : add.outputs[0];
    const attrs = { groups: A.i(toNumbers(target)[1]), epsilon: inorm.attrs.epsilon ?? A.f(1e-5), activation: A.i(silu ? 1 : 0), channels_last: A.i(1) };
    const x = r1.inputs[0];
    const sum = r.producer.get(x);
    const temb = sum?.opType === 'Add' && readers(r, x).length === 1 ? sum.inputs.map((i) => embeddingBehind(r, i)).find(Boolean) : undefined;
    [r1, inorm, r2!, mul!, add, ...(silu ? [sig!, silu] : [])].forEach((n) => r.drop.add(n));
    let y: string;
    if (temb && sum) {
      r.drop.add(sum);
      const other = sum.inputs.find((i) => !embeddingBehind(r, i))!;
      y = b.op('SkipGroupNorm', [b.op('Transpose', [other], { perm: A.ints([0, 2, 3, 1]) }), gamma, beta, temb], attrs, { ...MS, name: 'SkipGroupNorm' });
    } else {
      y = b.op('GroupNorm', [b.op('Transpose', [x], { perm: A.ints([0, 2, 3, 1]) }), gamma, beta], attrs, { ...MS, name: 'GroupNorm' });
    }
    b.op('Transpose', [y], { perm: A.ints([0, 3, 1, 2]) }, { outputs: [out] });
  }
  return finish(r);
}

// the [N, C] time embedding projection behind Unsqueeze(Unsqueeze(·)), if `v` is one
function embeddingBehind(r: Rewrite, v: string): string | undefined {
  const u1 = r.producer.get(v), u2 = u1?.opType === 'Unsqueeze' ? r.producer.get(u1.inputs[0]) : undefined;
  return u2?.opType === 'Unsqueeze' && r.producer.get(u2.inputs[0])?.opType === 'Gemm' ? u2.inputs[0] : undefined;
}

/** 3x3 stride-1 convolutions as NhwcConv between Transposes. */
export function withNhwcConv(model: Model): Model {
  const r = start(model);
  const { b } = r;
  for (const n of [...r.m.graph.nodes]) {
    const k = n.attrs.kernel_shape, s = n.attrs.strides;
    if (n.opType !== 'Conv' || k?.type !== 'ints' || k.value[0] !== 3 || (s?.type === 'ints' && s.value[0] !== 1)) continue;
    r.drop.add(n);
    const y = b.op('NhwcConv', [b.op('Transpose', [n.inputs[0]], { perm: A.ints([0, 2, 3, 1]) }), ...n.inputs.slice(1)], { ...n.attrs }, { ...MS, name: 'NhwcConv' });
    b.op('Transpose', [y], { perm: A.ints([0, 3, 1, 2]) }, { outputs: [n.outputs[0]] });
  }
  return finish(r);
}

/** A residual Add feeding a LayerNormalization as SkipLayerNormalization (the sum comes out as its output 3). */
export function withSkipLayerNorm(model: Model): Model {
  const r = start(model);
  for (const ln of [...r.m.graph.nodes]) {
    const add = ln.opType === 'LayerNormalization' ? r.producer.get(ln.inputs[0]) : undefined;
    if (add?.opType !== 'Add' || add.inputs.some((i) => constOf(r, i))) continue;
    r.drop.add(add).add(ln);
    r.b.op('SkipLayerNormalization', [add.inputs[0], add.inputs[1], ln.inputs[1], ln.inputs[2]], { epsilon: ln.attrs.epsilon ?? A.f(1e-5) }, { ...MS, name: 'SkipLayerNormalization', outputs: [ln.outputs[0], '', '', add.outputs[0]] });
  }
  return finish(r);
}

/** GEGLU (projection bias, two Slices, erf GELU of the gate, product) as BiasSplitGelu on the projection's MatMul. */
export function withBiasSplitGelu(model: Model): Model {
  const r = start(model);
  for (const erf of [...r.m.graph.nodes]) {
    if (erf.opType !== 'Erf') continue;
    const gate = r.producer.get(r.producer.get(erf.inputs[0])!.inputs[0])!;
    const proj = r.producer.get(gate.inputs[0]);
    const add1 = only(r, erf.outputs[0], 'Add'), mx = add1 && only(r, add1.outputs[0], 'Mul'), half = mx && only(r, mx.outputs[0], 'Mul');
    const product = half && only(r, half.outputs[0], 'Mul');
    const bias = proj?.inputs.find((i) => constOf(r, i)), mm = proj?.inputs.find((i) => !constOf(r, i));
    if (!product || !bias || !mm) continue;
    r.drop.add(product);
    r.b.op('BiasSplitGelu', [mm, bias], {}, { ...MS, name: 'BiasSplitGelu', outputs: [product.outputs[0]] });
  }
  return finish(r);
}

/** A linear layer's bias Add followed by a residual Add (not into a LayerNormalization) as BiasAdd. */
export function withBiasAdd(model: Model): Model {
  const r = start(model);
  for (const n of [...r.m.graph.nodes]) {
    const bias = n.opType === 'Add' ? n.inputs.find((i) => constOf(r, i)?.dims.length === 1) : undefined;
    const mm = bias ? r.producer.get(n.inputs.find((i) => i !== bias)!) : undefined;
    const res = mm?.opType === 'MatMul' ? only(r, n.outputs[0], 'Add') : undefined;
    if (!res || readers(r, res.outputs[0]).some((x) => x.opType === 'LayerNormalization' || x.opType === 'SkipLayerNormalization')) continue;
    r.drop.add(n).add(res);
    const skip = res.inputs.find((i) => i !== n.outputs[0])!;
    r.b.op('BiasAdd', [mm!.outputs[0], bias!, skip], {}, { ...MS, name: 'BiasAdd', outputs: [res.outputs[0]] });
  }
  return finish(r);
}

/** Everything onnxruntime's optimizer does to an SD UNet for CUDA, in its order. */
export function ortOptimized(model: Model, heads: number, packed = true): Model {
  return withNhwcConv(withBiasAdd(withBiasSplitGelu(withSkipLayerNorm(withFusedGroupNorm(withFusedAttention(model, heads, packed))))));
}
