/**
 * onnxruntime's fused `com.microsoft` operators (what its transformer optimizer and Olive write into Stable Diffusion
 * UNets) rewritten as standard ONNX operators with the same result: what autodiff differentiates, and what an
 * execution provider without their kernels (the CPU for GroupNorm, NhwcConv, BiasSplitGelu, ...) runs. One rule per
 * op, keyed by its name; packed attention weights are split back into q/k/v (and k/v) linear layers, so a LoRA
 * finds them.
 */
import { A, GraphBuilder } from './builder';
import { DataType, Model, Node, Tensor, cloneModel, onnxOpset, toNumbers } from './ir';
import { eliminateDeadNodes } from './dce';

/** What one rule sees: the graph being rebuilt, the node it replaces, the opset to write, and the graph's lookups. */
interface LowerContext {
  b: GraphBuilder;
  node: Node;
  opset: number;
  /** The constant behind a value (an initializer, through Identity), if any. */
  constant(value: string): Tensor | undefined;
  /** The node producing a value. */
  producer(value: string): Node | undefined;
}

/** A rule writes standard nodes computing `node`'s outputs under their names. */
type LowerRule = (c: LowerContext) => void;

const MS = 'com.microsoft';

/** The lowered model, how many nodes of each op were lowered, and the contrib ops left (no rule). */
export interface LoweredModel {
  model: Model;
  lowered: Map<string, number>;
  unsupported: string[];
}

/** True for a node of onnxruntime's contrib domain. */
export function isContribNode(n: Node): boolean {
  return n.domain === MS;
}

/** Rewrites every `com.microsoft` node there is a rule for; the model comes back as it is when it has none. */
export function lowerContribOps(model: Model, only?: ReadonlySet<string>): LoweredModel {
  const todo = model.graph.nodes.filter((n) => isContribNode(n) && (!only || only.has(n.opType)));
  const unsupported = [...new Set(todo.filter((n) => !RULES[n.opType]).map((n) => n.opType))];
  if (!todo.some((n) => RULES[n.opType])) return { model, lowered: new Map(), unsupported };
  const m = cloneModel(model);
  const g = m.graph;
  const b = new GraphBuilder(g);
  const producer = new Map<string, Node>();
  g.nodes.forEach((n) => n.outputs.forEach((o) => producer.set(o, n)));
  const constant = (v: string): Tensor | undefined => {
    for (let hops = 0; hops < 8; hops++) {
      const t = g.initializers.get(v);
      if (t) return t;
      const p = producer.get(v);
      if (p?.opType === 'Constant' && p.attrs.value?.type === 'tensor') return p.attrs.value.value;
      if (p?.opType !== 'Identity') return undefined;
      v = p.inputs[0];
    }
    return undefined;
  };
  const lowered = new Map<string, number>();
  const out: Node[] = [];
  const opset = onnxOpset(m);
  for (const node of [...g.nodes]) {
    const rule = isContribNode(node) && (!only || only.has(node.opType)) ? RULES[node.opType] : undefined;
    if (!rule) { out.push(node); continue; }
    const before = g.nodes.length;
    // new nodes sit in the fused node's scope (its own name as the last segment), never in a module's
    b.within((node.name || node.opType).replace(/^\/+/, ''), () => rule({ b, node, opset, constant, producer: (v) => producer.get(v) }));
    out.push(...g.nodes.splice(before));
    lowered.set(node.opType, (lowered.get(node.opType) ?? 0) + 1);
  }
  g.nodes = out;
  eliminateDeadNodes(g);
  if (!g.nodes.some(isContribNode)) m.opsetImports = m.opsetImports.filter((o) => o.domain !== MS);
  return { model: m, lowered, unsupported };
}

// ---- helpers that write a standard op at the model's opset -------------------------------------------------------

function unsqueeze(c: LowerContext, x: string, axes: number[]): string {
  return c.opset >= 13 ? c.b.op('Unsqueeze', [x, c.b.constI64(axes)]) : c.b.op('Unsqueeze', [x], { axes: A.ints(axes) });
}

function squeeze(c: LowerContext, x: string, axes: number[]): string {
  return c.opset >= 13 ? c.b.op('Squeeze', [x, c.b.constI64(axes)]) : c.b.op('Squeeze', [x], { axes: A.ints(axes) });
}

function reduceMean(c: LowerContext, x: string, axes: number[]): string {
  return c.opset >= 18 ? c.b.op('ReduceMean', [x, c.b.constI64(axes)], { keepdims: A.i(1) }) : c.b.op('ReduceMean', [x], { axes: A.ints(axes), keepdims: A.i(1) });
}

function slice(c: LowerContext, x: string, start: number, end: number, axis: number): string {
  return c.b.op('Slice', [x, c.b.constI64([start]), c.b.constI64([end]), c.b.constI64([axis])]);
}

function transpose(c: LowerContext, x: string, perm: number[], out?: string): string {
  return c.b.op('Transpose', [x], { perm: A.ints(perm) }, out ? { outputs: [out] } : {});
}

function attrI(n: Node, k: string, d: number): number {
  const a = n.attrs[k];
  return a?.type === 'int' ? a.value : d;
}

function attrF(n: Node, k: string, d: number): number {
  const a = n.attrs[k];
  return a?.type === 'float' ? a.value : d;
}

// x·Φ(x) with the exact (erf) Φ
function gelu(c: LowerContext, x: string, out?: string): string {
  const b = c.b;
  const phi = b.op('Mul', [b.op('Add', [b.op('Erf', [b.op('Div', [x, b.scalar(Math.SQRT2)])]), b.scalar(1)]), b.scalar(0.5)]);
  return b.op('Mul', [x, phi], {}, out ? { outputs: [out] } : {});
}

// GroupNorm on NCHW `x`: statistics per (sample, group) by InstanceNormalization on [N, G, -1], then scale and shift per channel
function groupNormNchw(c: LowerContext, x: string, gamma: string, beta: string, groups: number, eps: number, silu: boolean): string {
  const b = c.b;
  const r = b.op('Reshape', [x, b.constI64([0, groups, -1])]);
  const n = b.op('InstanceNormalization', [r, b.constF(new Array(groups).fill(1)), b.constF(new Array(groups).fill(0))], { epsilon: A.f(eps) });
  const perChannel = (v: string) => b.op('Reshape', [v, b.constI64([-1, 1, 1])]);
  const y = b.op('Add', [b.op('Mul', [b.op('Reshape', [n, b.op('Shape', [x])]), perChannel(gamma)]), perChannel(beta)]);
  return silu ? b.op('Mul', [y, b.op('Sigmoid', [y])]) : y;
}

// LayerNormalization over the last axis, written out before opset 17
function layerNorm(c: LowerContext, x: string, gamma: string, beta: string | undefined, eps: number, out: string): void {
  const b = c.b;
  if (c.opset >= 17) { b.op('LayerNormalization', beta ? [x, gamma, beta] : [x, gamma], { axis: A.i(-1), epsilon: A.f(eps) }, { outputs: [out] }); return; }
  const d = b.op('Sub', [x, reduceMean(c, x, [-1])]);
  const y = b.op('Mul', [b.op('Div', [d, b.op('Sqrt', [b.op('Add', [reduceMean(c, b.op('Mul', [d, d]), [-1]), b.scalar(eps)])])]), gamma]);
  if (beta) b.op('Add', [y, beta], {}, { outputs: [out] }); else b.op('Identity', [y], {}, { outputs: [out] });
}

// ---- attention ----------------------------------------------------------------------------------------------------

/**
 * softmax(q·kᵀ·scale)·v per head for q `[B, S, N·H]` and k, v either `[B, L, N·H]` or already `[B, N, L, H]`;
 * the result merged back to `[B, S, N·Hv]` under `out`.
 */
function attentionCore(c: LowerContext, q: string, k: string, v: string, heads: number, kvHeadsFirst: boolean, out: string): void {
  const b = c.b;
  const split = (x: string) => b.op('Reshape', [x, b.constI64([0, 0, heads, -1])]);
  const qh = transpose(c, split(q), [0, 2, 1, 3]);
  const kt = kvHeadsFirst ? transpose(c, k, [0, 1, 3, 2]) : transpose(c, split(k), [0, 2, 3, 1]);
  const vh = kvHeadsFirst ? v : transpose(c, split(v), [0, 2, 1, 3]);
  const given = attrF(c.node, 'scale', 0);
  // 1/√H from q's width when the node gives no scale (H may be a free dim until shapes are fixed)
  const scale = given ? b.scalar(given) : b.op('Reciprocal', [b.op('Sqrt', [b.op('Div', [
    b.op('Cast', [b.op('Slice', [b.op('Shape', [q]), b.constI64([-1]), b.constI64([2 ** 31])])], { to: A.i(DataType.FLOAT) }), b.scalar(heads)])])]);
  const p = b.op('Softmax', [b.op('Mul', [b.op('MatMul', [qh, kt]), scale])], { axis: A.i(-1) });
  const merged = transpose(c, b.op('MatMul', [p, vh]), [0, 2, 1, 3]);
  b.op('Reshape', [merged, b.constI64([0, 0, -1])], {}, { outputs: [out] });
}

/**
 * A packed projection `Reshape(MatMul(x, W[C, N·P·H]), [0, 0, N, P, H])` (onnxruntime interleaves q/k/v per head)
 * as P separate linear layers `x·W_p`, so LoRA sees to_q/to_k/to_v again; undefined when the input is not such a chain.
 */
function unpackProjection(c: LowerContext, packed: string, parts: number): string[] | undefined {
  const reshape = c.producer(packed);
  const mm = reshape?.opType === 'Reshape' ? c.producer(reshape.inputs[0]) : undefined;
  const w = mm?.opType === 'MatMul' ? c.constant(mm.inputs[1]) : undefined;
  const target = reshape ? c.constant(reshape.inputs[1]) : undefined;
  if (!mm || !w || w.dims.length !== 2 || w.dataType !== DataType.FLOAT && w.dataType !== DataType.FLOAT16 || !target) return undefined;
  const [, , n, p, h] = toNumbers(target);
  const [C, width] = w.dims;
  if (p !== parts || n * p * h !== width) return undefined;
  const src = w.data as Float32Array | Uint16Array;
  return Array.from({ length: parts }, (_, k) => {
    const data = src instanceof Float32Array ? new Float32Array(C * n * h) : new Uint16Array(C * n * h);
    for (let row = 0; row < C; row++) for (let head = 0; head < n; head++) for (let j = 0; j < h; j++) data[row * n * h + head * h + j] = src[row * width + (head * p + k) * h + j];
    const weight = c.b.initializer({ name: `${w.name}_${['q', 'k', 'v'][parts === 2 ? k + 1 : k]}`, dataType: w.dataType, dims: [C, n * h], data });
    return c.b.op('MatMul', [mm.inputs[0], weight], {}, { name: projectionName(c, ['to_q', 'to_k', 'to_v'][parts === 2 ? k + 1 : k]) });
  });
}

// one part of a packed [B, S, N, P, H] tensor as [B, S, N·H] (or heads-first [B, N, S, H])
function packedPart(c: LowerContext, x: string, part: number): string {
  return c.b.op('Reshape', [squeeze(c, slice(c, x, part, part + 1, 3), [3]), c.b.constI64([0, 0, -1])]);
}

function unsupportedInputs(c: LowerContext, from: number, what: string): void {
  const extra = c.node.inputs.slice(from).filter(Boolean);
  if (extra.length) throw new Error(`cannot lower ${c.node.opType} node "${c.node.name}": its ${what} (${extra.join(', ')}) are not supported; export the UNet without masks or cached keys`);
}

// MultiHeadAttention: separate q, k, v [B, S, D] (+ bias [3D]), packed kv [B, L, N, 2, H], packed qkv [B, S, N, 3, H], or k/v [B, N, L, H]
function multiHeadAttention(c: LowerContext): void {
  const { b, node } = c;
  const heads = attrI(node, 'num_heads', 0);
  if (!heads) throw new Error(`cannot lower MultiHeadAttention node "${node.name}": it has no num_heads`);
  unsupportedInputs(c, 4, 'mask, attention bias or past inputs');
  const [query, key, value, bias] = node.inputs;
  const out = node.outputs[0];
  if (!key) {
    const [q, k, v] = unpackProjection(c, query, 3) ?? [0, 1, 2].map((p) => packedPart(c, query, p));
    return attentionCore(c, q, k, v, heads, false, out);
  }
  if (!value) {
    const [k, v] = unpackProjection(c, key, 2) ?? [0, 1].map((p) => packedPart(c, key, p));
    return attentionCore(c, query, k, v, heads, false, out);
  }
  let [q, k, v] = [query, key, value];
  if (bias) {
    const t = c.constant(bias);
    const D = t ? t.dims[0] / 3 : 0;
    if (!D) throw new Error(`cannot lower MultiHeadAttention node "${node.name}": its bias ${bias} is not a constant [3·hidden]`);
    [q, k, v] = [q, k, v].map((x, i) => b.op('Add', [x, slice(c, bias, i * D, (i + 1) * D, 0)]));
  }
  // keys already split into heads [B, N, L, H] (rank 4), as a cross-attention with precomputed keys feeds them
  attentionCore(c, q, k, v, heads, rankOf(c, key) === 4, out);
}

// Attention (self-attention): input [B, S, C], weights [C, 3D] with q|k|v side by side, bias [3D]
function attention(c: LowerContext): void {
  const { b, node } = c;
  const heads = attrI(node, 'num_heads', 0);
  unsupportedInputs(c, 3, 'mask, past or attention bias inputs');
  const [x, weights, bias] = node.inputs;
  const w = c.constant(weights);
  const hidden = node.attrs.qkv_hidden_sizes?.type === 'ints' ? node.attrs.qkv_hidden_sizes.value : w ? [w.dims[1] / 3, w.dims[1] / 3, w.dims[1] / 3] : [];
  if (!w || w.dims.length !== 2 || !heads || hidden.length !== 3) throw new Error(`cannot lower Attention node "${node.name}": its weights are not a constant [C, q+k+v] or it has no num_heads`);
  const [C, width] = w.dims;
  let at = 0;
  const [q, k, v] = hidden.map((d, i) => {
    const src = w.data as Float32Array | Uint16Array;
    const data = src instanceof Float32Array ? new Float32Array(C * d) : new Uint16Array(C * d);
    for (let row = 0; row < C; row++) for (let j = 0; j < d; j++) data[row * d + j] = src[row * width + at + j];
    const name = ['to_q', 'to_k', 'to_v'][i];
    let y = b.op('MatMul', [x, b.initializer({ name: `${w.name}_${name}`, dataType: w.dataType, dims: [C, d], data })], {}, { name: projectionName(c, name) });
    if (bias) y = b.op('Add', [y, slice(c, bias, at, at + d, 0)]);
    at += d;
    return y;
  });
  attentionCore(c, q, k, v, heads, false, node.outputs[0]);
}

// ---- the rules ----------------------------------------------------------------------------------------------------

const RULES: Record<string, LowerRule> = {
  // Y = GroupNorm(X) (+ SiLU), X NHWC unless channels_last = 0
  GroupNorm: (c) => {
    const { node } = c;
    const [x, gamma, beta] = node.inputs;
    const last = attrI(node, 'channels_last', 1) === 1;
    const y = groupNormNchw(c, last ? transpose(c, x, [0, 3, 1, 2]) : x, gamma, beta, attrI(node, 'groups', 32), attrF(node, 'epsilon', 1e-5), attrI(node, 'activation', 0) === 1);
    if (last) transpose(c, y, [0, 2, 3, 1], node.outputs[0]); else c.b.op('Identity', [y], {}, { outputs: [node.outputs[0]] });
  },
  // S = X + skip (+ bias), Y = GroupNorm(S); skip [N, H, W, C], [N, 1, 1, C] or [N, C] (NCHW: [N, C, H, W], [N, C, 1, 1], [N, C])
  SkipGroupNorm: (c) => {
    const { b, node } = c;
    const [x, gamma, beta, skip, bias] = node.inputs;
    const last = attrI(node, 'channels_last', 1) === 1;
    const C = c.constant(gamma)?.dims[0];
    if (!C) throw new Error(`cannot lower SkipGroupNorm node "${node.name}": its gamma ${gamma} is not a constant vector`);
    // every skip form broadcasts once both are [N, pixels, C] (NHWC) or [N, C, pixels] (NCHW)
    const flat = b.constI64(last ? [0, -1, C] : [0, C, -1]);
    let s = b.op('Reshape', [b.op('Add', [b.op('Reshape', [x, flat]), b.op('Reshape', [skip, flat])]), b.op('Shape', [x])]);
    if (bias) s = b.op('Add', [s, last ? bias : b.op('Reshape', [bias, b.constI64([-1, 1, 1])])]);
    if (node.outputs[1]) b.op('Identity', [s], {}, { outputs: [node.outputs[1]] });
    const y = groupNormNchw(c, last ? transpose(c, s, [0, 3, 1, 2]) : s, gamma, beta, attrI(node, 'groups', 32), attrF(node, 'epsilon', 1e-5), attrI(node, 'activation', 0) === 1);
    if (last) transpose(c, y, [0, 2, 3, 1], node.outputs[0]); else b.op('Identity', [y], {}, { outputs: [node.outputs[0]] });
  },
  // Conv on NHWC input and output
  NhwcConv: (c) => {
    const { b, node } = c;
    const y = b.op('Conv', [transpose(c, node.inputs[0], [0, 3, 1, 2]), ...node.inputs.slice(1)], { ...node.attrs });
    transpose(c, y, [0, 2, 3, 1], node.outputs[0]);
  },
  // Y = X + bias + skip
  BiasAdd: (c) => {
    const [x, bias, skip] = c.node.inputs;
    c.b.op('Add', [c.b.op('Add', [x, bias]), skip], {}, { outputs: [c.node.outputs[0]] });
  },
  // left, right = split(X + bias, 2, -1); Y = left · gelu(right)
  BiasSplitGelu: (c) => {
    const { b, node } = c;
    const [x, bias] = node.inputs;
    const D = c.constant(bias)?.dims[0];
    if (!D) throw new Error(`cannot lower BiasSplitGelu node "${node.name}": its bias ${bias} is not a constant vector`);
    const y = b.op('Add', [x, bias]);
    b.op('Mul', [slice(c, y, 0, D / 2, -1), gelu(c, slice(c, y, D / 2, D, -1))], {}, { outputs: [node.outputs[0]] });
  },
  // S = input + skip (+ bias); output = LayerNorm(S)·gamma + beta; outputs 1, 2 the mean and 1/σ; output 3 is S
  SkipLayerNormalization: (c) => {
    const { b, node } = c;
    const [x, skip, gamma, beta, bias] = node.inputs;
    const eps = attrF(node, 'epsilon', 1e-12);
    let s = b.op('Add', [x, skip]);
    if (bias) s = b.op('Add', [s, bias]);
    layerNorm(c, s, gamma, beta || undefined, eps, node.outputs[0]);
    if (node.outputs[1] || node.outputs[2]) {
      const mean = reduceMean(c, s, [-1]);
      const d = b.op('Sub', [s, mean]);
      if (node.outputs[1]) b.op('Identity', [mean], {}, { outputs: [node.outputs[1]] });
      if (node.outputs[2]) b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [reduceMean(c, b.op('Mul', [d, d]), [-1]), b.scalar(eps)])])], {}, { outputs: [node.outputs[2]] });
    }
    if (node.outputs[3]) b.op('Identity', [s], {}, { outputs: [node.outputs[3]] });
  },
  MultiHeadAttention: multiHeadAttention,
  Attention: attention,
  Gelu: (c) => { gelu(c, c.node.inputs[0], c.node.outputs[0]); },
  BiasGelu: (c) => { gelu(c, c.b.op('Add', c.node.inputs.slice(0, 2)), c.node.outputs[0]); },
  // x·σ(1.702x) (QuickGelu, alpha 1.702 by default)
  QuickGelu: (c) => {
    const x = c.node.inputs[0];
    c.b.op('Mul', [x, c.b.op('Sigmoid', [c.b.op('Mul', [x, c.b.scalar(attrF(c.node, 'alpha', 1.702))])])], {}, { outputs: [c.node.outputs[0]] });
  },
  // the tanh approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))), with an optional bias
  FastGelu: (c) => {
    const { b, node } = c;
    const x = node.inputs[1] ? b.op('Add', node.inputs.slice(0, 2)) : node.inputs[0];
    const inner = b.op('Mul', [b.op('Add', [x, b.op('Mul', [b.op('Mul', [b.op('Mul', [x, x]), x]), b.scalar(0.044715)])]), b.scalar(Math.sqrt(2 / Math.PI))]);
    b.op('Mul', [b.op('Mul', [x, b.scalar(0.5)]), b.op('Add', [b.op('Tanh', [inner]), b.scalar(1)])], {}, { outputs: [node.outputs[0]] });
  },
};

// The rank of a value where the graph says it without shape inference: a constant, a Reshape to a constant shape, a Transpose.
function rankOf(c: LowerContext, v: string): number | undefined {
  const t = c.constant(v);
  if (t) return t.dims.length;
  const p = c.producer(v);
  if (p?.opType === 'Reshape') return c.constant(p.inputs[1])?.dims[0];
  if (p?.opType === 'Transpose' && p.attrs.perm?.type === 'ints') return p.attrs.perm.value.length;
  return undefined;
}

// The name of a projection split out of a fused attention: under the attention's module scope when the node has one
// (`/…/attn1/MultiHeadAttention` -> `/…/attn1/to_q/MatMul`), else unscoped, so LoRA finds it by structure.
function projectionName(c: LowerContext, role: string): string {
  const n = c.node.name;
  const scoped = /^\/.+\/[^/]+$/.test(n);
  return scoped ? `${n.slice(0, n.lastIndexOf('/'))}/${role}/MatMul` : `${n || c.node.opType}_${role}_MatMul`;
}
