/** Appends nodes to a Graph with unique names; used by autodiff rules, losses and the graph builders. */
import { AttrValue, DataType, Graph, Node, Tensor, ValueInfo, Dim, makeTensor } from './ir';

/** Attribute shorthands: `A.i(1)`, `A.f(0.5)`, `A.ints([0, 1])`, ... */
export const A = {
  i: (value: number): AttrValue => ({ type: 'int', value }),
  f: (value: number): AttrValue => ({ type: 'float', value }),
  s: (value: string): AttrValue => ({ type: 'string', value }),
  ints: (value: number[]): AttrValue => ({ type: 'ints', value }),
  floats: (value: number[]): AttrValue => ({ type: 'floats', value }),
  t: (value: Tensor): AttrValue => ({ type: 'tensor', value }),
};

export interface NodeOptions {
  /** Node name (made unique); defaults to `<scope>/<opType>`. */
  name?: string;
  /** Number of outputs (default 1) or their exact names. */
  outputs?: number | string[];
  domain?: string;
}

/** Emits nodes into `graph`. Names are unique across the graph; `scope` prefixes node names like exporters do. */
export class GraphBuilder {
  private used = new Set<string>();
  private counter = 0;
  private constCache = new Map<string, string>();
  scope = '';

  constructor(readonly graph: Graph, readonly prefix = '') {
    for (const n of graph.nodes) { this.used.add(n.name); n.outputs.forEach((o) => this.used.add(o)); }
    for (const v of graph.inputs) this.used.add(v.name);
    for (const k of graph.initializers.keys()) this.used.add(k);
  }

  /** A fresh name starting with `base`. */
  uniq(base: string): string {
    let name = this.prefix + base;
    while (this.used.has(name)) name = `${this.prefix}${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** Runs `fn` with node names under `scope/`. */
  within<T>(scope: string, fn: () => T): T {
    const saved = this.scope;
    this.scope = saved ? `${saved}/${scope}` : scope;
    try { return fn(); } finally { this.scope = saved; }
  }

  /** Appends a node; returns its output names. */
  nodeN(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: NodeOptions = {}): string[] {
    const nodeName = this.uniq(opts.name ?? (this.scope ? `/${this.scope}/${opType}` : opType));
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs.map((o) => { this.used.add(o); return o; })
      : Array.from({ length: opts.outputs ?? 1 }, (_, k) => this.uniq(`${nodeName}_output_${k}`));
    const node: Node = { name: nodeName, opType, domain: opts.domain ?? '', inputs: [...inputs], outputs: outs, attrs };
    this.graph.nodes.push(node);
    return outs;
  }

  /** Appends a single-output node; returns the output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: NodeOptions = {}): string {
    return this.nodeN(opType, inputs, attrs, opts)[0];
  }

  /** Adds an initializer with a unique name (or the given one) and returns the name. */
  initializer(t: Tensor, exactName = false): string {
    const name = exactName ? t.name : this.uniq(t.name || 'const');
    if (exactName) this.used.add(name);
    this.graph.initializers.set(name, { ...t, name });
    return name;
  }

  /** A float32 constant (deduplicated). `dims` defaults to a 1-D tensor, `[]` makes a scalar. */
  constF(values: ArrayLike<number>, dims: number[] = [values.length]): string {
    return this.cached(DataType.FLOAT, values, dims);
  }

  /** An int64 constant (deduplicated), e.g. shapes and axes. */
  constI64(values: ArrayLike<number>, dims: number[] = [values.length]): string {
    return this.cached(DataType.INT64, values, dims);
  }

  /** A scalar constant of the given type. */
  scalar(value: number, dataType: DataType = DataType.FLOAT): string {
    return this.cached(dataType, [value], []);
  }

  private cached(dt: DataType, values: ArrayLike<number>, dims: number[]): string {
    const vals = Array.from(values);
    const key = `${dt}|${dims.join(',')}|${vals.map((v) => (Object.is(v, -0) ? '-0' : String(v))).join(',')}`;
    const hit = this.constCache.get(key);
    if (hit && this.graph.initializers.has(hit)) return hit;
    const name = this.initializer(makeTensor(dt === DataType.INT64 ? 'const_i64' : 'const_f', dt, dims, vals));
    this.constCache.set(key, name);
    return name;
  }

  /** Declares a graph input. */
  input(name: string, elemType: DataType, shape: Dim[] | null): string {
    const v: ValueInfo = { name, elemType, shape };
    this.used.add(name);
    this.graph.inputs.push(v);
    return name;
  }

  /** Declares a graph output (renaming via Identity when `name` differs from `value`). */
  output(value: string, name = value, elemType: DataType = DataType.FLOAT, shape: Dim[] | null = null): string {
    let out = value;
    if (name !== value) out = this.op('Identity', [value], {}, { outputs: [name] });
    this.graph.outputs.push({ name: out, elemType, shape });
    return out;
  }
}
