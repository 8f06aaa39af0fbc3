/** Shape arithmetic shared by shape inference and the constant evaluator. */
import { AttrValue, DataType, Node, Tensor } from './ir';

/** A tensor's static element type and dims. */
export interface TensorShape {
  elemType: DataType;
  dims: number[];
}

/** What inference knows about a tensor: its shape, and its value when it is a known constant. */
export interface TensorInfo extends TensorShape {
  value?: Tensor;
}

/** `Op node "name"`, the prefix of every inference error. */
export function where(node: Node): string {
  return `${node.opType} node "${node.name || node.outputs[0] || '?'}"`;
}

/** Numpy-style (multidirectional) broadcast of several shapes. */
export function broadcastShapes(shapes: number[][], node: Node): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const k = rank - s.length + i, d = s[i];
      if (d === out[k] || d === 1) continue;
      if (out[k] === 1) out[k] = d;
      else throw new Error(`${where(node)}: cannot broadcast shapes ${shapes.map((x) => `[${x}]`).join(' and ')}`);
    }
  }
  return out;
}

/** Normalizes a possibly negative axis against `rank`, with a clear error when out of range. */
export function normAxis(axis: number, rank: number, node: Node): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${where(node)}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Clamped start and element count of a Slice along one axis of size `dim` (ONNX opset 10+ rules). */
export function sliceAxis(dim: number, start: number, end: number, step: number): { start: number; count: number } {
  if (step === 0) throw new Error('Slice step must not be 0');
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = Math.min(Math.max(start, 0), dim);
    end = Math.min(Math.max(end, 0), dim);
  } else {
    start = Math.min(Math.max(start, 0), dim - 1);
    end = Math.min(Math.max(end, -1), dim - 1);
  }
  return { start, count: Math.max(0, Math.ceil((end - start) / step)) };
}

/** Output spatial size of a convolution/pool window along one axis. */
export function windowOut(inSize: number, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number, autoPad: string, ceilMode = false): number {
  const ek = (kernel - 1) * dilation + 1;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(inSize / stride);
  if (autoPad === 'VALID') return Math.floor((inSize - ek) / stride) + 1;
  const span = inSize + padBegin + padEnd - ek;
  return (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
}

/** An int attribute, or `def` when absent; attribute readers throw naming the node when the type is wrong. */
export function attrInt(node: Node, name: string, def: number): number;
export function attrInt(node: Node, name: string, def?: number): number | undefined;
export function attrInt(node: Node, name: string, def?: number): number | undefined {
  const a = node.attrs[name];
  if (!a) return def;
  if (a.type !== 'int') throw new Error(`${where(node)}: attribute ${name} should be an int, got ${a.type}`);
  return a.value;
}

/** A float attribute, or `def` when absent. */
export function attrFloat(node: Node, name: string, def: number): number {
  const a = node.attrs[name];
  if (!a) return def;
  if (a.type !== 'float') throw new Error(`${where(node)}: attribute ${name} should be a float, got ${a.type}`);
  return a.value;
}

/** An ints attribute (a single int is accepted), or undefined when absent. */
export function attrInts(node: Node, name: string): number[] | undefined {
  const a: AttrValue | undefined = node.attrs[name];
  if (!a) return undefined;
  if (a.type === 'ints') return a.value;
  if (a.type === 'int') return [a.value];
  throw new Error(`${where(node)}: attribute ${name} should be ints, got ${a.type}`);
}

/** A string attribute, or `def` when absent. */
export function attrString(node: Node, name: string, def: string): string {
  const a = node.attrs[name];
  if (!a) return def;
  if (a.type !== 'string') throw new Error(`${where(node)}: attribute ${name} should be a string, got ${a.type}`);
  return a.value;
}

/** Row-major strides of a shape. */
export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) { s[i] = acc; acc *= dims[i]; }
  return s;
}

/** The tensor a Constant node produces (from whichever value_* attribute it has). */
export function constantAttrTensor(node: Node): Tensor {
  const a = node.attrs;
  if (a.value?.type === 'tensor') return a.value.value;
  const mk = (dataType: DataType, dims: number[], vals: number[]): Tensor => {
    const data = dataType === DataType.INT64 ? BigInt64Array.from(vals, (v) => BigInt(v)) : Float32Array.from(vals);
    return { name: node.outputs[0], dataType, dims, data };
  };
  if (a.value_float?.type === 'float') return mk(DataType.FLOAT, [], [a.value_float.value]);
  if (a.value_floats?.type === 'floats') return mk(DataType.FLOAT, [a.value_floats.value.length], a.value_floats.value);
  if (a.value_int?.type === 'int') return mk(DataType.INT64, [], [a.value_int.value]);
  if (a.value_ints?.type === 'ints') return mk(DataType.INT64, [a.value_ints.value.length], a.value_ints.value);
  throw new Error(`${where(node)}: Constant without a supported value attribute (has ${Object.keys(a).join(', ') || 'none'})`);
}
