/**
 * Inference-only rewrite: the decomposed attention core (head split, q·kᵀ, Softmax, ·v, head merge) becomes one
 * `com.microsoft.MultiHeadAttention` node, which onnxruntime's CPU, CUDA and WebGPU providers run as one kernel
 * (WebGPU: a flash-attention shader when the batch is 1). Training graphs keep the standard ops.
 */
import { AttrValue, Model, Node, Tensor, cloneModel, topoSort, toNumbers } from './ir';
import { A, GraphBuilder } from './builder';
import { eliminateDeadNodes } from './dce';

/** Options of {@link fuseAttention}. */
export interface FuseAttentionOptions {
  /**
   * Fold a static batch of this size into the heads: q/k/v `[B, S, D]` become `[1, S, B·D]` with B·N heads, which is
   * the same attention (each head still sees only its own sample) at batch 1, where WebGPU's flash attention applies.
   */
  foldBatch?: number;
}

/** The rewritten model and how many attention cores it fused. */
export interface FusedAttention {
  model: Model;
  fused: number;
}

interface Match {
  q: string;
  k: string;
  v: string;
  heads: number;
  headSize: number;
  scale: number;
  output: string;
  nodes: Node[];
}

/** Fuses every attention core of `model` that has the decomposed shape our graph builder and SDPA exports emit. */
export function fuseAttention(model: Model, opts: FuseAttentionOptions = {}): FusedAttention {
  const m = cloneModel(model);
  const g = m.graph;
  const producer = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) if (o) producer.set(o, n);
    for (const i of n.inputs) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  const constant = (name: string): Tensor | undefined => {
    const init = g.initializers.get(name);
    if (init) return init;
    const p = producer.get(name);
    return p?.opType === 'Constant' && p.attrs.value?.type === 'tensor' ? p.attrs.value.value : undefined;
  };
  const ints = (name: string) => { const t = constant(name); return t ? toNumbers(t) : undefined; };
  const perm = (n: Node | undefined, want: number[]) =>
    n?.opType === 'Transpose' && n.attrs.perm?.type === 'ints' && n.attrs.perm.value.join() === want.join();
  // the only consumer of `name`, when it has exactly one and is not a graph output
  const sole = (name: string): Node | undefined => {
    const c = consumers.get(name) ?? [];
    return c.length === 1 && !graphOutputs.has(name) ? c[0] : undefined;
  };
  // x → Reshape([0, -1, N, H]) → Transpose(perm) [→ Mul(scalar)]: returns the source and the split
  const heads = (name: string, want: number[]): { src: string; n: number; h: number; scale: number; nodes: Node[] } | undefined => {
    let scale = 1;
    const nodes: Node[] = [];
    let cur = producer.get(name);
    if (cur?.opType === 'Mul') {
      const c = cur.inputs.map((i) => constant(i));
      const at = c.findIndex((t) => t && t.data.length === 1);
      if (at < 0) return undefined;
      scale = Number(c[at]!.data[0]);
      nodes.push(cur);
      cur = producer.get(cur.inputs[1 - at]);
    }
    if (!perm(cur, want) || !sole(cur!.outputs[0])) return undefined;
    nodes.push(cur!);
    const reshape = producer.get(cur!.inputs[0]);
    const shape = reshape?.opType === 'Reshape' ? ints(reshape.inputs[1]) : undefined;
    if (!reshape || !shape || shape.length !== 4 || shape[2] <= 0 || shape[3] <= 0 || !sole(reshape.outputs[0])) return undefined;
    nodes.push(reshape);
    return { src: reshape.inputs[0], n: shape[2], h: shape[3], scale, nodes };
  };

  const matches: Match[] = [];
  for (const sm of g.nodes) {
    if (sm.opType !== 'Softmax') continue;
    const axis = sm.attrs.axis?.type === 'int' ? sm.attrs.axis.value : -1;
    const scores = producer.get(sm.inputs[0]);
    if ((axis !== -1 && axis !== 3) || scores?.opType !== 'MatMul' || !sole(scores.outputs[0])) continue;
    const q = heads(scores.inputs[0], [0, 2, 1, 3]);
    const k = heads(scores.inputs[1], [0, 2, 3, 1]);
    const pv = sole(sm.outputs[0]);
    if (!q || !k || pv?.opType !== 'MatMul' || pv.inputs[0] !== sm.outputs[0]) continue;
    const v = heads(pv.inputs[1], [0, 2, 1, 3]);
    const back = sole(pv.outputs[0]);
    const merge = back && perm(back, [0, 2, 1, 3]) ? sole(back.outputs[0]) : undefined;
    const mergeShape = merge?.opType === 'Reshape' ? ints(merge.inputs[1]) : undefined;
    if (!v || v.scale !== 1 || q.n !== k.n || k.n !== v.n || q.h !== k.h || k.h !== v.h) continue;
    if (!mergeShape || mergeShape.length !== 3 || mergeShape[2] !== q.n * q.h) continue;
    if ([...q.nodes, ...k.nodes].some((n) => n.opType === 'Mul' && !sole(n.outputs[0]))) continue;
    matches.push({
      q: q.src, k: k.src, v: v.src, heads: q.n, headSize: q.h, scale: q.scale * k.scale, output: merge!.outputs[0],
      nodes: [...q.nodes, ...k.nodes, ...v.nodes, scores, sm, pv, back!, merge!],
    });
  }
  if (!matches.length) return { model: m, fused: 0 };

  const removed = new Set(matches.flatMap((x) => x.nodes));
  g.nodes = g.nodes.filter((n) => !removed.has(n));
  const b = new GraphBuilder(g);
  const fold = opts.foldBatch;
  if (fold !== undefined && (!Number.isInteger(fold) || fold < 1)) throw new Error(`fuseAttention: foldBatch must be a positive integer, got ${fold}`);
  const ms = (name: string, i: number) => ({ name: `${name}/fused_attention_${i}` });
  matches.forEach((x, i) => {
    const attrs: Record<string, AttrValue> = { num_heads: A.i(x.heads * (fold ?? 1)), scale: A.f(x.scale) };
    // present_key/present_value are requested because WebGPU's flash-attention path only runs when they exist
    const outs = [fold ? b.uniq(`${x.output}_folded`) : x.output, b.uniq(`${x.output}_present_key`), b.uniq(`${x.output}_present_value`)];
    if (!fold) {
      b.nodeN('MultiHeadAttention', [x.q, x.k, x.v], attrs, { ...ms('MultiHeadAttention', i), domain: 'com.microsoft', outputs: outs });
      return;
    }
    // [B, S, D] → [S, B, D] → [S, B·D] → [1, S, B·D]
    const axes0 = b.constI64([0]);
    const packed = [x.q, x.k, x.v].map((t) => b.op('Unsqueeze', [b.op('Flatten', [b.op('Transpose', [t], { perm: A.ints([1, 0, 2]) })], { axis: A.i(1) }), axes0]));
    b.nodeN('MultiHeadAttention', packed, attrs, { ...ms('MultiHeadAttention', i), domain: 'com.microsoft', outputs: outs });
    const d = x.heads * x.headSize;
    const unpacked = b.op('Reshape', [outs[0], b.constI64([-1, fold, d])]);
    b.op('Transpose', [unpacked], { perm: A.ints([1, 0, 2]) }, { outputs: [x.output] });
  });
  if (!m.opsetImports.some((o) => o.domain === 'com.microsoft')) m.opsetImports.push({ domain: 'com.microsoft', version: 1 });
  g.nodes = topoSort(g);
  eliminateDeadNodes(g);
  return { model: m, fused: matches.length };
}
