/** Read-only lookups over a Graph: producers, consumers, constant-ness and data dependence on inputs. */
import { Graph, Node, Tensor, topoSort } from '../onnx/ir';

/** Ops whose output carries no data of their input (only its shape). */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/** Producer/consumer maps and memoised analyses of one graph. */
export class GraphIndex {
  readonly producer = new Map<string, Node>();
  readonly consumers = new Map<string, Node[]>();
  readonly order: Node[];
  readonly position = new Map<Node, number>();
  private constMemo = new Map<string, boolean>();

  constructor(readonly graph: Graph) {
    for (const n of graph.nodes) {
      for (const o of n.outputs) if (o) this.producer.set(o, n);
      for (const i of n.inputs) {
        if (!i) continue;
        const list = this.consumers.get(i);
        if (list) list.push(n); else this.consumers.set(i, [n]);
      }
    }
    this.order = topoSort(graph);
    this.order.forEach((n, k) => this.position.set(n, k));
  }

  /** Nodes reading `value`. */
  readers(value: string): Node[] {
    return this.consumers.get(value) ?? [];
  }

  /** True when `value` depends on no graph input's data (initializers, Constants, shapes only). */
  isConstLike(value: string): boolean {
    if (!value) return true;
    const hit = this.constMemo.get(value);
    if (hit !== undefined) return hit;
    // iterative post-order so long constant chains cannot overflow the stack
    const stack = [value];
    while (stack.length) {
      const v = stack[stack.length - 1];
      if (this.constMemo.has(v)) { stack.pop(); continue; }
      if (this.graph.initializers.has(v)) { this.constMemo.set(v, true); stack.pop(); continue; }
      const p = this.producer.get(v);
      if (!p) { this.constMemo.set(v, false); stack.pop(); continue; }
      if (SHAPE_ONLY.has(p.opType) || p.opType === 'Constant') { this.constMemo.set(v, true); stack.pop(); continue; }
      const pending = p.inputs.filter((i) => i && !this.constMemo.has(i));
      if (pending.length) { stack.push(...pending); continue; }
      this.constMemo.set(v, p.inputs.every((i) => !i || this.constMemo.get(i)));
      stack.pop();
    }
    return this.constMemo.get(value)!;
  }

  /**
   * For every value, a bit mask of which `sources` (graph input names) its data depends on.
   * Shape/Size cut the dependence: a shape is not data.
   */
  dependence(sources: string[]): Map<string, number> {
    const mask = new Map<string, number>();
    sources.forEach((s, k) => mask.set(s, 1 << k));
    for (const n of this.order) {
      let m = 0;
      if (!SHAPE_ONLY.has(n.opType)) for (const i of n.inputs) m |= mask.get(i) ?? 0;
      for (const o of n.outputs) if (o) mask.set(o, m);
    }
    return mask;
  }
}

/** The linear layer a MatMul/Gemm node applies, when its weight is a constant. */
export interface LinearLayer {
  node: Node;
  /** Initializer holding the weight ([in, out], or [out, in] when `transB`). */
  weight: Tensor;
  inFeatures: number;
  outFeatures: number;
  /** The weight is stored [out, in] (nn.Linear's layout), transposed by Gemm's transB or a Transpose node. */
  transB: boolean;
  /** The node and input slot that read the initializer itself (the layer, or an Identity/Transpose between them). */
  weightSlot: { node: Node; input: number };
}

/**
 * The constant 2-D weight behind `value`, through Identity (exporters alias shared weights that way) and 2-D Transpose
 * nodes (the dynamo exporter writes nn.Linear as MatMul(x, Transpose(W))); `flipped` when an odd number of them transpose.
 */
function weightBehind(index: GraphIndex, reader: Node, input: number): { weight: Tensor; flipped: boolean; slot: { node: Node; input: number } } | undefined {
  let slot = { node: reader, input };
  let flipped = false;
  for (let hops = 0; hops < 8; hops++) {
    const v = slot.node.inputs[slot.input];
    const t = index.graph.initializers.get(v);
    if (t) return t.dims.length === 2 ? { weight: t, flipped, slot } : undefined;
    const p = index.producer.get(v);
    if (!p || !(p.opType === 'Identity' || (p.opType === 'Transpose' && isSwap(p)))) return undefined;
    if (p.opType === 'Transpose') flipped = !flipped;
    slot = { node: p, input: 0 };
  }
  return undefined;
}

function isSwap(n: Node): boolean {
  const perm = n.attrs.perm;
  return !perm || (perm.type === 'ints' && perm.value.length === 2 && perm.value[0] === 1 && perm.value[1] === 0);
}

/** Describes `node` as a linear layer x·W (+b) with a constant 2-D weight, or undefined. */
export function linearLayerOf(index: GraphIndex, node: Node): LinearLayer | undefined {
  if (node.opType !== 'MatMul' && node.opType !== 'Gemm') return undefined;
  const w = weightBehind(index, node, 1);
  if (!w) return undefined;
  if (node.opType === 'Gemm') {
    const transA = node.attrs.transA;
    if (transA && transA.type === 'int' && transA.value !== 0) return undefined;
  }
  const tb = node.attrs.transB;
  const transB = (node.opType === 'Gemm' && !!tb && tb.type === 'int' && tb.value !== 0) !== w.flipped;
  const [d0, d1] = w.weight.dims;
  return { node, weight: w.weight, inFeatures: transB ? d1 : d0, outFeatures: transB ? d0 : d1, transB, weightSlot: w.slot };
}
