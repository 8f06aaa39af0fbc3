/** What a gradient rule sees: the forward node, static shapes, and helpers that emit standard ONNX nodes. */
import { A, GraphBuilder } from '../onnx/builder';
import { AttrValue, DataType, Node, makeTensor } from '../onnx/ir';
import { ConstFolder } from './fold';
import type { ShapeMap } from './types';

/** Gradient of each input (null: none or not wanted), given the gradients of the node's outputs. */
export type GradRule = (c: GradCtx, gy: Array<string | null>) => Array<string | null | undefined>;

/** Per-node view for rules; `begin` retargets it to the next forward node. */
export class GradCtx {
  node!: Node;
  private wanted: boolean[] = [];

  constructor(readonly b: GraphBuilder, readonly opset: number, private readonly shapes: ShapeMap, private readonly folder: ConstFolder) {}

  /** Points the context at the next forward node and which of its inputs need gradients. */
  begin(node: Node, wanted: boolean[]): void {
    this.node = node;
    this.wanted = wanted;
  }

  /** The i-th input / output name of the forward node. */
  in(i: number): string { return this.node.inputs[i] ?? ''; }
  out(i = 0): string { return this.node.outputs[i]; }

  /** Whether the walk needs the gradient of input i. */
  wants(i: number): boolean { return this.wanted[i] === true; }

  /** `fn()` when input i's gradient is wanted, else null (so unwanted gradients emit nothing). */
  grad(i: number, fn: () => string): string | null { return this.wants(i) ? fn() : null; }

  /** Like `grad`, then sums the full-output-shaped result down to input i's shape (un-broadcasting). */
  bgrad(i: number, fn: () => string): string | null {
    return this.wants(i) ? this.unbroadcast(fn(), this.dims(this.out()), this.dims(this.in(i))) : null;
  }

  /** Emits one node named `grad/<forward node>/<op>`; returns its output. */
  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.opN(type, inputs, attrs, 1)[0];
  }

  opN(type: string, inputs: string[], attrs: Record<string, AttrValue>, outputs: number): string[] {
    return this.b.nodeN(type, inputs, attrs, { name: `grad/${this.node.name || this.node.opType}/${type}`, outputs });
  }

  /** Static dims of a forward tensor; throws with a hint when shape inference did not provide them. */
  dims(name: string): number[] {
    const s = this.shapes.get(name);
    if (!s) throw new Error(`no static shape for "${name}" needed by the gradient of ${this.where()}; pass shapes from inferShapes() after specialize()`);
    return s.dims;
  }

  dtype(name: string): DataType { return this.shapes.get(name)?.elemType ?? DataType.FLOAT; }

  /** `Op node "name"` for error messages. */
  where(): string { return `${this.node.opType} node "${this.node.name}"`; }

  attrI(name: string, def: number): number { const a = this.node.attrs[name]; return a?.type === 'int' ? a.value : def; }
  attrF(name: string, def: number): number { const a = this.node.attrs[name]; return a?.type === 'float' ? a.value : def; }
  attrS(name: string, def: string): string { const a = this.node.attrs[name]; return a?.type === 'string' ? a.value : def; }
  attrInts(name: string): number[] | undefined { const a = this.node.attrs[name]; return a?.type === 'ints' ? a.value : undefined; }

  /** Values of a constant integer tensor (initializer, Constant, or a foldable shape computation), else undefined. */
  ints(name: string): number[] | undefined { return name ? this.folder.ints(name) : undefined; }

  /** A scalar constant with the element type of `like`. */
  scalar(value: number, like: string): string {
    const dt = this.dtype(like);
    if (dt === DataType.FLOAT || dt === DataType.DOUBLE) return this.b.scalar(value, dt);
    return this.op('Cast', [this.b.scalar(value)], { to: A.i(dt) });
  }

  i64(values: number[]): string { return this.b.constI64(values); }

  /** A zero tensor of static dims and type. */
  zeros(dims: number[], dt: DataType): string {
    const fill = dt === DataType.FLOAT || dt === DataType.DOUBLE ? makeTensor('', dt, [1], [0]) : makeTensor('', DataType.FLOAT, [1], [0]);
    const z = this.op('ConstantOfShape', [this.i64(dims)], { value: A.t(fill) });
    return fill.dataType === dt ? z : this.op('Cast', [z], { to: A.i(dt) });
  }

  reshape(x: string, dims: number[]): string { return this.op('Reshape', [x, this.i64(dims)]); }
  transpose(x: string, perm: number[]): string { return this.op('Transpose', [x], { perm: A.ints(perm) }); }

  /** ReduceSum with the opset's axes convention (input since 13). */
  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    if (this.opset >= 13) return this.op('ReduceSum', [x, this.i64(axes)], { keepdims: A.i(keepdims ? 1 : 0) });
    return this.op('ReduceSum', [x], { axes: A.ints(axes), keepdims: A.i(keepdims ? 1 : 0) });
  }

  /** ReduceMean with the opset's axes convention (input since 18). */
  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    if (this.opset >= 18) return this.op('ReduceMean', [x, this.i64(axes)], { keepdims: A.i(keepdims ? 1 : 0) });
    return this.op('ReduceMean', [x], { axes: A.ints(axes), keepdims: A.i(keepdims ? 1 : 0) });
  }

  /** Slice with constant starts/ends/axes (steps 1). */
  slice(x: string, starts: number[], ends: number[], axes: number[]): string {
    return this.op('Slice', [x, this.i64(starts), this.i64(ends), this.i64(axes)]);
  }

  /** Sums a gradient of shape `from` over the axes numpy broadcasting expanded, giving shape `to`. */
  unbroadcast(g: string, from: number[], to: number[]): string {
    const lead = from.length - to.length;
    if (lead < 0) throw new Error(`${this.where()}: gradient of rank ${from.length} cannot reduce to rank ${to.length}`);
    const axes: number[] = [];
    for (let i = 0; i < from.length; i++) if (i < lead || (to[i - lead] === 1 && from[i] !== 1)) axes.push(i);
    const r = axes.length ? this.reduceSum(g, axes, true) : g;
    return lead > 0 ? this.reshape(r, to) : r;
  }
}
