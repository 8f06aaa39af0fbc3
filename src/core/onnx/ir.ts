/** A small in-memory IR for ONNX models: plain data, names kept, nodes in file order. */

/** ONNX TensorProto.DataType values we use. */
export enum DataType {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
}

/** Typed array holding a tensor's elements (FLOAT16 is kept as raw Uint16 bits). */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | BigUint64Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array;

/** A constant tensor (initializer or attribute value). */
export interface Tensor {
  name: string;
  dataType: DataType;
  dims: number[];
  data: TensorData;
}

/** A dimension: a fixed size, a symbolic name, or unknown. */
export type Dim = number | string | null;

/** Graph input/output/value_info entry. */
export interface ValueInfo {
  name: string;
  elemType: DataType;
  /** null when the rank itself is unknown. */
  shape: Dim[] | null;
}

export type AttrValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] };

/** One operator application. An empty string in `inputs` marks an omitted optional input. */
export interface Node {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, Tensor>;
  valueInfo: ValueInfo[];
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface Model {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  opsetImports: OpsetImport[];
  graph: Graph;
  metadata: Record<string, string>;
}

/** The default-domain opset version of a model (17 when absent). */
export function onnxOpset(model: Model): number {
  const imp = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  return imp ? imp.version : 17;
}

/** Number of elements of a fully known shape. */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Bytes per element of a data type. */
export function elemBytes(t: DataType): number {
  switch (t) {
    case DataType.FLOAT: case DataType.INT32: case DataType.UINT32: return 4;
    case DataType.DOUBLE: case DataType.INT64: case DataType.UINT64: return 8;
    case DataType.FLOAT16: case DataType.UINT16: case DataType.INT16: return 2;
    case DataType.UINT8: case DataType.INT8: case DataType.BOOL: return 1;
    default: throw new Error(`unsupported tensor data type ${DataType[t] ?? t}`);
  }
}

/** Allocates a typed array of the right class for a data type. */
export function allocData(t: DataType, n: number): TensorData {
  switch (t) {
    case DataType.FLOAT: return new Float32Array(n);
    case DataType.DOUBLE: return new Float64Array(n);
    case DataType.INT32: return new Int32Array(n);
    case DataType.INT64: return new BigInt64Array(n);
    case DataType.UINT64: return new BigUint64Array(n);
    case DataType.UINT32: return new Uint32Array(n);
    case DataType.FLOAT16: case DataType.UINT16: return new Uint16Array(n);
    case DataType.INT16: return new Int16Array(n);
    case DataType.UINT8: case DataType.BOOL: return new Uint8Array(n);
    case DataType.INT8: return new Int8Array(n);
    default: throw new Error(`unsupported tensor data type ${DataType[t] ?? t}`);
  }
}

/** Views little-endian bytes as a typed array of the data type (copies, so alignment never matters). */
export function dataFromBytes(t: DataType, bytes: Uint8Array): TensorData {
  const n = bytes.byteLength / elemBytes(t);
  const out = allocData(t, n);
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  return out;
}

/** The raw little-endian bytes of tensor data (a view, no copy). */
export function bytesOfData(d: TensorData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Element values as plain numbers (int64 converted; fine for shapes and indices). */
export function toNumbers(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** Builds a tensor from numbers. */
export function makeTensor(name: string, dataType: DataType, dims: number[], values: ArrayLike<number> | TensorData): Tensor {
  const n = numel(dims);
  const data = allocData(dataType, n);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) (data as BigInt64Array)[i] = BigInt(Math.trunc(Number((values as ArrayLike<number | bigint>)[i])));
  } else {
    for (let i = 0; i < n; i++) (data as Float32Array)[i] = Number((values as ArrayLike<number | bigint>)[i]);
  }
  return { name, dataType, dims: [...dims], data };
}

/** An empty graph. */
export function emptyGraph(name = 'graph'): Graph {
  return { name, nodes: [], inputs: [], outputs: [], initializers: new Map(), valueInfo: [] };
}

/** A model wrapping a graph, default opset 17. */
export function makeModel(graph: Graph, opset = 17, producerName = 'ddpo-studio'): Model {
  return { irVersion: 8, producerName, producerVersion: '', opsetImports: [{ domain: '', version: opset }], graph, metadata: {} };
}

/** Nodes in a topological order (stable: keeps file order where it can). Throws on cycles. */
export function topoSort(graph: Graph): Node[] {
  const producer = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));
  const state = new Uint8Array(graph.nodes.length); // 0 new, 1 visiting, 2 done
  const order: Node[] = [];
  const visit = (start: number): void => {
    // iterative DFS so deep UNets do not overflow the stack
    const stack: Array<[number, number]> = [[start, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [i, k] = top;
      if (k === 0) {
        if (state[i] === 2) { stack.pop(); continue; }
        state[i] = 1;
      }
      const node = graph.nodes[i];
      const deps = [...node.inputs, ...subgraphOuterNames(node)];
      if (k < deps.length) {
        top[1] = k + 1;
        const p = producer.get(deps[k]);
        if (p !== undefined && p !== i) {
          if (state[p] === 1) throw new Error(`graph has a cycle through node ${node.name || node.opType}`);
          if (state[p] === 0) stack.push([p, 0]);
        }
        continue;
      }
      state[i] = 2;
      order.push(node);
      stack.pop();
    }
  };
  for (let i = 0; i < graph.nodes.length; i++) if (state[i] === 0) visit(i);
  return order;
}

/** Names a node's subgraphs (If/Loop bodies) read from the enclosing scope. */
export function subgraphOuterNames(node: Node): string[] {
  const names: string[] = [];
  for (const a of Object.values(node.attrs)) {
    if (a.type !== 'graph') continue;
    const g = a.value;
    const local = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
    for (const n of g.nodes) n.outputs.forEach((o) => local.add(o));
    for (const n of g.nodes) for (const i of [...n.inputs, ...subgraphOuterNames(n)]) if (i && !local.has(i)) names.push(i);
  }
  return names;
}

/** Deep-enough copy of a graph: node arrays and maps are new, tensor data is shared. */
export function cloneGraph(g: Graph): Graph {
  return {
    name: g.name,
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    inputs: g.inputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    outputs: g.outputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    initializers: new Map(g.initializers),
    valueInfo: g.valueInfo.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
  };
}

/**
 * Drops the weight data of `model`'s initializers (names, types and shapes stay), once a session holds its own copy:
 * the graph stays usable as I/O metadata. Clones share tensors, so each clone that holds them must be stripped.
 */
export function releaseWeights(model: Model): void {
  const g = model.graph;
  for (const [k, t] of g.initializers) g.initializers.set(k, { ...t, data: allocData(t.dataType, 0) });
}

export function cloneModel(m: Model): Model {
  return { ...m, opsetImports: m.opsetImports.map((o) => ({ ...o })), graph: cloneGraph(m.graph), metadata: { ...m.metadata } };
}
