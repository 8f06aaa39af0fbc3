/**
 * Recomputation in the backward pass (activation checkpointing for one kind of tensor): gradient nodes that read a
 * large forward tensor read a copy recomputed right before them instead, so the forward one dies after the forward
 * pass. Attention probabilities are the case that matters: softmax(q·kᵀ) is tokens² per head, 0.5 GiB per SD 1.5
 * self-attention at 64×64 latents in float16, and its backward needs it twice (dV = Pᵀ·dO and the Softmax rule).
 */
import { DataType, Model, Node, makeTensor, topoSort } from '../onnx/ir';
import { A } from '../onnx/builder';
import type { ShapeMap } from './types';

/** Ops cheap enough to run again: the attention-score chain (MatMul, scale, mask) and the Softmax itself. */
const RECOMPUTABLE = new Set(['Softmax', 'MatMul', 'Mul', 'Div', 'Add', 'Transpose', 'Reshape']);

/**
 * The default size from which training graphs recompute attention probabilities: 2^25 values, which on SD 1.5 takes
 * the five 4096-token self-attentions at 64×64 latents (0.5 GiB each in float16) for five extra kernels each.
 */
export const RECOMPUTE_ATTENTION_DEFAULT = 2 ** 25;

/** What {@link recomputeAttention} did. */
export interface RecomputeReport {
  /** Softmax outputs the backward recomputes. */
  tensors: number;
  /** Their total size: memory not held from the forward pass into the backward (at the graph's precision). */
  elements: number;
  /** Nodes added (the copies and three small nodes each that order them after a gradient). */
  nodes: number;
}

/**
 * Rewrites `model` (a gradient graph from buildGradientGraph, in place) so every Softmax output of at least
 * `minElements` values that gradient nodes read is recomputed just before the first of them, from forward tensors
 * the backward keeps anyway (q and kᵀ, which the MatMul rule reads). Gradient nodes are those named `grad/...`.
 */
export function recomputeAttention(model: Model, shapes: ShapeMap, minElements: number): RecomputeReport {
  const g = model.graph;
  const producer = new Map<string, Node>();
  const gradReaders = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) if (o) producer.set(o, n);
    if (isGradient(n)) for (const i of n.inputs) if (i) (gradReaders.get(i) ?? gradReaders.set(i, []).get(i)!).push(n);
  }
  const report: RecomputeReport = { tensors: 0, elements: 0, nodes: 0 };
  for (const sm of g.nodes.filter((n) => n.opType === 'Softmax' && !isGradient(n))) {
    const p = sm.outputs[0];
    const readers = gradReaders.get(p);
    const size = (shapes.get(p)?.dims ?? []).reduce((a, b) => a * b, 1);
    if (!readers?.length || size < minElements) continue;
    const clones: Node[] = [];
    const copy = new Map<string, string>();
    // a forward value the backward keeps anyway is read as is; anything else on the chain is recomputed
    const recompute = (v: string, depth: number): string => {
      const n = producer.get(v);
      if (!n || isGradient(n) || gradReaders.has(v) && v !== p || !RECOMPUTABLE.has(n.opType) || depth > 4) return v;
      const hit = copy.get(v);
      if (hit) return hit;
      const inputs = n.inputs.map((i) => (i ? recompute(i, depth + 1) : i));
      const outputs = n.outputs.map((o) => (o ? `${o}_recomputed` : o));
      clones.push({ ...n, name: `grad/recompute/${n.name || n.opType}`, inputs, outputs, attrs: { ...n.attrs } });
      n.outputs.forEach((o, k) => o && copy.set(o, outputs[k]));
      return copy.get(v)!;
    };
    // onnxruntime would run an exact copy as soon as its inputs exist (in the forward pass) or merge it with the
    // original (common-subexpression elimination), keeping the tensor alive all the same. So the copy also reads a
    // gradient its readers read: where(max(dP) > 0, q, q) is q, NaN included, but exists only once dP does.
    const dep = readers.flatMap((r) => r.inputs).find((i) => i && i !== p && producer.get(i) && isGradient(producer.get(i)!));
    if (!dep) continue;
    const again = recompute(p, 0);
    if (again === p) continue;
    const root = clones.find((n) => !n.inputs.some((i) => clones.some((c) => c.outputs.includes(i))))!;
    const zero = `grad/recompute/zero_${shapes.get(p)?.elemType ?? 1}`;
    if (!g.initializers.has(zero)) g.initializers.set(zero, makeTensor(zero, shapes.get(p)?.elemType ?? DataType.FLOAT, [], [0]));
    const tag = `grad/recompute/${sm.name || 'Softmax'}`;
    const max = { name: `${tag}/after_gradient/ReduceMax`, opType: 'ReduceMax', domain: '', inputs: [dep], outputs: [`${tag}/after_gradient_max`], attrs: { keepdims: A.i(0) } };
    const ready = { name: `${tag}/after_gradient/Greater`, opType: 'Greater', domain: '', inputs: [max.outputs[0], zero], outputs: [`${tag}/after_gradient_ready`], attrs: {} };
    const gate = { name: `${tag}/after_gradient/Where`, opType: 'Where', domain: '', inputs: [ready.outputs[0], root.inputs[0], root.inputs[0]], outputs: [`${tag}/after_gradient_input`], attrs: {} };
    root.inputs = [gate.outputs[0], ...root.inputs.slice(1)];
    clones.unshift(max, ready, gate);
    for (const r of readers) r.inputs = r.inputs.map((i) => (i === p ? again : i));
    g.nodes.push(...clones);
    report.tensors++;
    report.elements += size;
    report.nodes += clones.length;
  }
  // the stable topological order moves each copy to just before its first reader (onnxruntime picks its own order;
  // the gradient the copy reads is what keeps it out of the forward pass)
  if (report.tensors) g.nodes = topoSort(g);
  return report;
}

const isGradient = (n: Node) => n.name.startsWith('grad/');
