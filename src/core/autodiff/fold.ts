/** Reads small integer constants (Slice starts, Split sizes, Pad pads) through Shape/Gather/Concat chains. */
import { DataType, Graph, Node, Tensor, toNumbers } from '../onnx/ir';
import { isFloatType, type ShapeMap } from './types';

const MAX_FOLD_ELEMS = 64;

/** Memoized evaluator of integer-valued tensors from initializers, Constant nodes and static shapes. */
export class ConstFolder {
  private producer = new Map<string, Node>();
  private memo = new Map<string, number[] | undefined>();

  constructor(private readonly graph: Graph, private readonly shapes: ShapeMap) {
    for (const n of graph.nodes) for (const o of n.outputs) if (o) this.producer.set(o, n);
  }

  /** The tensor's values as numbers, or undefined when they are not known before running the graph. */
  ints(name: string): number[] | undefined {
    if (this.memo.has(name)) return this.memo.get(name);
    this.memo.set(name, undefined); // guards against cycles
    const v = this.compute(name);
    this.memo.set(name, v);
    return v;
  }

  private compute(name: string): number[] | undefined {
    const known = this.shapes.get(name)?.value ?? this.graph.initializers.get(name);
    if (known) return small(known);
    const n = this.producer.get(name);
    if (!n) return undefined;
    const a = n.attrs;
    const ins = (i: number) => (n.inputs[i] ? this.ints(n.inputs[i]) : undefined);
    switch (n.opType) {
      case 'Constant':
        if (a.value?.type === 'tensor') return small(a.value.value);
        if (a.value_int?.type === 'int') return [a.value_int.value];
        if (a.value_ints?.type === 'ints') return a.value_ints.value;
        return undefined;
      case 'Shape': {
        const d = this.shapes.get(n.inputs[0])?.dims;
        if (!d) return undefined;
        const r = d.length, norm = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
        const s = a.start?.type === 'int' ? norm(a.start.value) : 0;
        const e = a.end?.type === 'int' ? norm(a.end.value) : r;
        return d.slice(s, e);
      }
      case 'Identity': case 'Cast': case 'Squeeze': case 'Unsqueeze': case 'Reshape': case 'Flatten':
        return ins(0);
      case 'Concat': {
        const parts = n.inputs.map((x) => this.ints(x));
        return parts.every((p) => p) ? (parts as number[][]).flat() : undefined;
      }
      case 'Gather': {
        const d = ins(0), idx = ins(1);
        if (!d || !idx) return undefined;
        return idx.map((i) => d[i < 0 ? i + d.length : i]);
      }
      case 'Add': case 'Sub': case 'Mul': case 'Div': {
        const x = ins(0), y = ins(1);
        if (!x || !y) return undefined;
        const len = Math.max(x.length, y.length);
        const intOut = !isFloatType(this.shapes.get(name)?.elemType ?? DataType.INT64);
        const f = { Add: (p: number, q: number) => p + q, Sub: (p: number, q: number) => p - q, Mul: (p: number, q: number) => p * q, Div: (p: number, q: number) => (intOut ? Math.trunc(p / q) : p / q) }[n.opType]!;
        return Array.from({ length: len }, (_, i) => f(x[x.length === 1 ? 0 : i], y[y.length === 1 ? 0 : i]));
      }
      default:
        return undefined;
    }
  }
}

function small(t: Tensor): number[] | undefined {
  return t.data.length <= MAX_FOLD_ELEMS ? toNumbers(t) : undefined;
}
