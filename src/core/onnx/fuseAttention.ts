/**
 * Inference-only rewrite: the decomposed attention core (head split, q·kᵀ, Softmax, ·v, head merge) becomes one
 * `com.microsoft.MultiHeadAttention` node, which onnxruntime's CPU, CUDA and WebGPU providers run as one kernel
 * (WebGPU: a flash-attention shader when the batch is 1). Training graphs keep the standard ops.
 */
import { AttrValue, Model, Node, Tensor, cloneModel, onnxOpset, topoSort, toNumbers } from './ir';
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
  const index = new GraphIndex(g);
  const opset = onnxOpset(m);
  const matches = g.nodes.map((sm) => (sm.opType === 'Softmax' ? matchCore(index, sm, opset) : undefined)).filter((x): x is Match => x !== undefined);
  if (!matches.length) return { model: m, fused: 0 };

  const removed = new Set(matches.flatMap((x) => x.nodes));
  g.nodes = g.nodes.filter((n) => !removed.has(n));
  const fold = opts.foldBatch;
  if (fold !== undefined && (!Number.isInteger(fold) || fold < 1)) throw new Error(`fuseAttention: foldBatch must be a positive integer, got ${fold}`);
  const b = new GraphBuilder(g);
  matches.forEach((x, i) => emitMultiHeadAttention(b, x, i, fold));
  if (!m.opsetImports.some((o) => o.domain === 'com.microsoft')) m.opsetImports.push({ domain: 'com.microsoft', version: 1 });
  g.nodes = topoSort(g);
  eliminateDeadNodes(g);
  return { model: m, fused: matches.length };
}

// Who produces and who reads each value of a graph, and the constants among them.
class GraphIndex {
  private readonly producer = new Map<string, Node>();
  private readonly consumers = new Map<string, Node[]>();
  private readonly graphOutputs: Set<string>;

  constructor(private readonly g: Model['graph']) {
    for (const n of g.nodes) {
      for (const o of n.outputs) if (o) this.producer.set(o, n);
      for (const i of n.inputs) if (i) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n]);
    }
    this.graphOutputs = new Set(g.outputs.map((o) => o.name));
  }

  producerOf(name: string): Node | undefined {
    return this.producer.get(name);
  }

  constant(name: string): Tensor | undefined {
    const init = this.g.initializers.get(name);
    if (init) return init;
    const p = this.producer.get(name);
    return p?.opType === 'Constant' && p.attrs.value?.type === 'tensor' ? p.attrs.value.value : undefined;
  }

  ints(name: string): number[] | undefined {
    const t = this.constant(name);
    return t ? toNumbers(t) : undefined;
  }

  // the only consumer of `name`, when it has exactly one and is not a graph output
  sole(name: string): Node | undefined {
    const c = this.consumers.get(name) ?? [];
    return c.length === 1 && !this.graphOutputs.has(name) ? c[0] : undefined;
  }
}

const perm = (n: Node | undefined, want: number[]) =>
  n?.opType === 'Transpose' && n.attrs.perm?.type === 'ints' && n.attrs.perm.value.join() === want.join();

// The attention core around Softmax `sm`: q·kᵀ → Softmax → ·v → head merge, each of q, k, v split into heads.
function matchCore(ix: GraphIndex, sm: Node, opset: number): Match | undefined {
  // before opset 13 a Softmax without `axis` normalises over everything from axis 1 on, not over the keys
  const axis = sm.attrs.axis?.type === 'int' ? sm.attrs.axis.value : opset >= 13 ? -1 : 1;
  const scores = ix.producerOf(sm.inputs[0]);
  if ((axis !== -1 && axis !== 3) || scores?.opType !== 'MatMul' || !ix.sole(scores.outputs[0])) return undefined;
  const q = headSplit(ix, scores.inputs[0], [0, 2, 1, 3]);
  const k = headSplit(ix, scores.inputs[1], [0, 2, 3, 1]);
  const pv = ix.sole(sm.outputs[0]);
  if (!q || !k || pv?.opType !== 'MatMul' || pv.inputs[0] !== sm.outputs[0]) return undefined;
  const v = headSplit(ix, pv.inputs[1], [0, 2, 1, 3]);
  const back = ix.sole(pv.outputs[0]);
  const merge = back && perm(back, [0, 2, 1, 3]) ? ix.sole(back.outputs[0]) : undefined;
  const mergeShape = merge?.opType === 'Reshape' ? ix.ints(merge.inputs[1]) : undefined;
  if (!v || v.scale !== 1 || q.n !== k.n || k.n !== v.n || q.h !== k.h || k.h !== v.h) return undefined;
  if (!mergeShape || mergeShape.length !== 3 || mergeShape[2] !== q.n * q.h) return undefined;
  if ([...q.nodes, ...k.nodes].some((n) => n.opType === 'Mul' && !ix.sole(n.outputs[0]))) return undefined;
  return {
    q: q.src, k: k.src, v: v.src, heads: q.n, headSize: q.h, scale: q.scale * k.scale, output: merge!.outputs[0],
    nodes: [...q.nodes, ...k.nodes, ...v.nodes, scores, sm, pv, back!, merge!],
  };
}

// x → Reshape([0, -1, N, H]) → Transpose(perm) [→ Mul(scalar)]: returns the source and the split
function headSplit(ix: GraphIndex, name: string, want: number[]): { src: string; n: number; h: number; scale: number; nodes: Node[] } | undefined {
  let scale = 1;
  const nodes: Node[] = [];
  let cur = ix.producerOf(name);
  if (cur?.opType === 'Mul') {
    const c = cur.inputs.map((i) => ix.constant(i));
    const at = c.findIndex((t) => t && t.data.length === 1);
    if (at < 0) return undefined;
    scale = Number(c[at]!.data[0]);
    nodes.push(cur);
    cur = ix.producerOf(cur.inputs[1 - at]);
  }
  if (!perm(cur, want) || !ix.sole(cur!.outputs[0])) return undefined;
  nodes.push(cur!);
  const reshape = ix.producerOf(cur!.inputs[0]);
  const shape = reshape?.opType === 'Reshape' ? ix.ints(reshape.inputs[1]) : undefined;
  if (!reshape || !shape || shape.length !== 4 || shape[2] <= 0 || shape[3] <= 0 || !ix.sole(reshape.outputs[0])) return undefined;
  nodes.push(reshape);
  return { src: reshape.inputs[0], n: shape[2], h: shape[3], scale, nodes };
}

// The i-th match as one MultiHeadAttention, its batch folded into the heads when `fold` is set.
function emitMultiHeadAttention(b: GraphBuilder, x: Match, i: number, fold: number | undefined): void {
  const name = { name: `MultiHeadAttention/fused_attention_${i}` };
  const attrs: Record<string, AttrValue> = { num_heads: A.i(x.heads * (fold ?? 1)), scale: A.f(x.scale) };
  // present_key/present_value are requested because WebGPU's flash-attention path only runs when they exist
  const outs = [fold ? b.uniq(`${x.output}_folded`) : x.output, b.uniq(`${x.output}_present_key`), b.uniq(`${x.output}_present_value`)];
  if (!fold) {
    b.nodeN('MultiHeadAttention', [x.q, x.k, x.v], attrs, { ...name, domain: 'com.microsoft', outputs: outs });
    return;
  }
  // [B, S, D] → [S, B, D] → [S, B·D] → [1, S, B·D]
  const axes0 = b.constI64([0]);
  const packed = [x.q, x.k, x.v].map((t) => b.op('Unsqueeze', [b.op('Flatten', [b.op('Transpose', [t], { perm: A.ints([1, 0, 2]) })], { axis: A.i(1) }), axes0]));
  b.nodeN('MultiHeadAttention', packed, attrs, { ...name, domain: 'com.microsoft', outputs: outs });
  const d = x.heads * x.headSize;
  const unpacked = b.op('Reshape', [outs[0], b.constI64([-1, fold, d])]);
  b.op('Transpose', [unpacked], { perm: A.ints([1, 0, 2]) }, { outputs: [x.output] });
}
