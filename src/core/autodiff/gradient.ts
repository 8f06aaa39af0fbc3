/** Reverse-mode autodiff over an ONNX graph: appends gradient nodes built from standard ONNX ops. */
import { GraphBuilder } from '../onnx/builder';
import { DataType, Graph, Model, Node, Tensor, cloneModel, makeTensor, onnxOpset, topoSort } from '../onnx/ir';
import { GradCtx } from './context';
import { ShapeMap, isFloatType } from './types';
import { ConstFolder } from './fold';
import { DIFF_INPUTS, NON_DIFFERENTIABLE, RULES } from './rules';
import { RecomputeReport, recomputeAttention } from './recompute';

export interface GradientOptions {
  /** Static element types and dims of every tensor (from inferShapes after specialize). */
  shapes: ShapeMap;
  /** Tensors to differentiate with respect to: graph inputs, initializers (kept constant) or intermediates. */
  wrt: string[];
  /** A scalar output whose gradient is seeded with 1. */
  loss?: string;
  /** Outputs whose upstream gradients become new graph inputs named `${out}_grad`. */
  cotangents?: string[];
  /** Keep the forward graph outputs after the gradients (default false). */
  keepForwardOutputs?: boolean;
  /** Softmax outputs of at least this many values are recomputed in the backward instead of kept (default: none). */
  recomputeAttention?: number;
}

export interface GradientResult {
  model: Model;
  /** Gradient output name for each `wrt` (`${wrt}_grad`). */
  grads: Record<string, string>;
  /** What `recomputeAttention` rewrote. */
  recomputed?: RecomputeReport;
}

/**
 * The float initializer {@link buildGradientGraph} seeds the backward pass with, d loss/d loss (named `<loss>_seed`):
 * scaling it scales every gradient, which is how float16 training does loss scaling.
 */
export function lossSeedOf(model: Model, loss = 'loss'): Tensor {
  const seed = [...model.graph.initializers.values()].find((x) => x.name.startsWith(`${loss}_seed`));
  if (!seed || seed.dataType !== DataType.FLOAT) throw new Error(`the training graph has no float "${loss}_seed" (d ${loss}/d ${loss}) to scale; cannot train in fp16`);
  return seed;
}

/** Builds a model that computes d(loss)/d(wrt) or the vector-Jacobian product of `cotangents`. */
export function buildGradientGraph(model: Model, opts: GradientOptions): GradientResult {
  const { wrt } = opts;
  const cotangents = opts.cotangents ?? [];
  if (!wrt.length) throw new Error('buildGradientGraph: `wrt` is empty; name the inputs or weights to differentiate');
  if (!opts.loss && !cotangents.length) throw new Error('buildGradientGraph: give a scalar `loss` output or `cotangents`');
  const m = cloneModel(model);
  const g = m.graph;
  const order = topoSort(g);
  const shapes = withDeclaredShapes(g, opts.shapes);
  const dtype = typeLookup(g, shapes);
  checkNames(g, order, wrt, [...(opts.loss ? [opts.loss] : []), ...cotangents], dtype);

  const live = forwardReach(order, wrt, dtype);
  const { need, active } = backwardNeed(order, live, [...(opts.loss ? [opts.loss] : []), ...cotangents]);

  const b = new GraphBuilder(g);
  const folder = new ConstFolder(g, shapes);
  const ctx = new GradCtx(b, onnxOpset(m), shapes, folder);
  const sums = new GradientSums(b);
  seed(b, sums, opts.loss, cotangents, shapes, dtype);
  for (const n of active) backwardStep(ctx, sums, n, need);
  const { grads, outputs } = gradientOutputs(g, ctx, sums, wrt, shapes, dtype);
  g.outputs = opts.keepForwardOutputs ? [...outputs, ...g.outputs] : outputs;
  const recomputed = opts.recomputeAttention !== undefined ? recomputeAttention(m, shapes, opts.recomputeAttention) : undefined;
  eliminateDeadNodes(g);
  return { model: m, grads, recomputed };
}

// Each tensor's gradient contributions; d/dv sums the contributions of every consumer (and the seed when v is an output).
class GradientSums {
  private readonly contrib = new Map<string, string[]>();
  private readonly summed = new Map<string, string | null>();

  constructor(private readonly b: GraphBuilder) {}

  add(v: string, gv: string): void {
    const l = this.contrib.get(v);
    if (l) l.push(gv); else this.contrib.set(v, [gv]);
  }

  // The summed gradient of `v` (null: none reached it), built once.
  total(v: string): string | null {
    if (this.summed.has(v)) return this.summed.get(v)!;
    const l = this.contrib.get(v) ?? [];
    // pairwise Adds, not a variadic Sum: Add has a kernel on every execution provider, Sum not on all of them
    let s: string | null = l.length ? l[0] : null;
    for (let i = 1; i < l.length; i++) s = this.b.op('Add', [s!, l[i]], {}, { name: `grad/sum/${v}${i > 1 ? `/${i}` : ''}` });
    this.summed.set(v, s);
    return s;
  }
}

// The backward pass starts from d loss/d loss = 1 (a `<loss>_seed` initializer) and from a `<out>_grad` input per cotangent.
function seed(b: GraphBuilder, sums: GradientSums, loss: string | undefined, cotangents: string[], shapes: ShapeMap, dtype: (v: string) => DataType | undefined): void {
  if (loss) {
    const dims = shapes.get(loss)?.dims ?? [];
    const dt = dtype(loss) ?? DataType.FLOAT;
    const one = b.initializer(makeTensor(`${loss}_seed`, dt, dims, [ONE_BITS[dt] ?? 1]));
    sums.add(loss, one);
  }
  for (const o of cotangents) {
    const s = shapes.get(o);
    if (!s) throw new Error(`no static shape for cotangent output "${o}"; pass shapes from inferShapes() after specialize()`);
    sums.add(o, b.input(`${o}_grad`, s.elemType, s.dims));
  }
}

// Node `n`'s rule turns its outputs' gradients into contributions to its wanted inputs'.
function backwardStep(ctx: GradCtx, sums: GradientSums, n: Node, need: Set<string>): void {
  const gy = n.outputs.map((o) => (o && need.has(o) ? sums.total(o) : null));
  if (gy.every((x) => x === null)) return;
  const rule = RULES[n.opType];
  if (!rule || (n.domain && n.domain !== 'ai.onnx')) {
    throw new Error(`no gradient rule for op "${n.domain ? n.domain + '.' : ''}${n.opType}" (node "${n.name}"); add one in src/core/autodiff/rules or keep the op off the path to the loss`);
  }
  const wanted = n.inputs.map((x, i) => need.has(x) && diffInput(n, i));
  ctx.begin(n, wanted);
  const gx = rule(ctx, gy);
  gx.forEach((gi, i) => { if (gi && wanted[i]) sums.add(n.inputs[i], gi); });
}

// One `<wrt>_grad` output per differentiated tensor (zeros when the loss does not depend on it).
function gradientOutputs(g: Graph, ctx: GradCtx, sums: GradientSums, wrt: string[], shapes: ShapeMap, dtype: (v: string) => DataType | undefined): { grads: Record<string, string>; outputs: Graph['outputs'] } {
  const b = ctx.b;
  const grads: Record<string, string> = {};
  const outputs: Graph['outputs'] = [];
  for (const w of wrt) {
    let gw = sums.total(w);
    if (!gw) {
      ctx.begin({ name: w, opType: 'Zeros', domain: '', inputs: [], outputs: [], attrs: {} }, []);
      const dims = shapes.get(w)?.dims;
      if (!dims) throw new Error(`no static shape for "${w}"; pass shapes from inferShapes() after specialize()`);
      gw = ctx.zeros(dims, dtype(w) ?? DataType.FLOAT);
    }
    const name = nameGradient(g, gw, `${w}_grad`) ?? b.op('Identity', [gw], {}, { name: `grad/${w}/Identity`, outputs: [`${w}_grad`] });
    grads[w] = name;
    outputs.push({ name, elemType: dtype(w) ?? DataType.FLOAT, shape: shapes.get(w)?.dims ?? null });
  }
  return { grads, outputs };
}

/**
 * Renames the gradient node output `v` to the output name `to` when nothing else reads it, so the gradient needs no
 * Identity node (one kernel per trained tensor); undefined when `v` is a forward tensor, an input or shared.
 */
function nameGradient(g: Graph, v: string, to: string): string | undefined {
  const producer = g.nodes.find((n) => n.outputs.includes(v));
  if (!producer || !producer.name.startsWith('grad/') || g.outputs.some((o) => o.name === v)) return undefined;
  if (g.nodes.some((n) => n.inputs.includes(v))) return undefined;
  producer.outputs = producer.outputs.map((o) => (o === v ? to : o));
  return to;
}

// 1.0 as raw bits for the 16-bit float types (kept as Uint16 in the IR)
const ONE_BITS: Partial<Record<number, number>> = { [DataType.FLOAT16]: 0x3c00, 16: 0x3f80 };

/** The caller's shapes plus initializers and fully static graph inputs it may have left out. */
function withDeclaredShapes(g: Graph, shapes: ShapeMap): ShapeMap {
  const all: ShapeMap = new Map(shapes);
  for (const [k, t] of g.initializers) if (!all.has(k)) all.set(k, { elemType: t.dataType, dims: t.dims });
  for (const v of g.inputs) {
    if (!all.has(v.name) && v.shape && v.shape.every((d) => typeof d === 'number')) all.set(v.name, { elemType: v.elemType, dims: v.shape as number[] });
  }
  return all;
}

function typeLookup(g: Graph, shapes: ShapeMap): (v: string) => DataType | undefined {
  const declared = new Map<string, DataType>();
  for (const v of g.inputs) declared.set(v.name, v.elemType);
  for (const [k, t] of g.initializers) declared.set(k, t.dataType);
  return (v) => shapes.get(v)?.elemType ?? declared.get(v);
}

function checkNames(g: Graph, order: Node[], wrt: string[], seeds: string[], dtype: (v: string) => DataType | undefined): void {
  const known = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const n of order) for (const o of n.outputs) if (o) known.add(o);
  for (const w of wrt) {
    if (!known.has(w)) throw new Error(`cannot differentiate with respect to "${w}": no graph input, initializer or node output has that name`);
    if (!isFloatType(dtype(w))) throw new Error(`cannot differentiate with respect to "${w}": it holds ${DataType[dtype(w)!]} values, not floats`);
  }
  for (const s of seeds) if (!known.has(s)) throw new Error(`loss/cotangent "${s}" is not a tensor of the graph`);
}

/** Input positions that can carry gradient (others are shapes, indices, sizes). */
function diffInput(n: Node, i: number): boolean {
  const allowed = DIFF_INPUTS[n.opType];
  return !allowed || allowed.includes(i);
}

/** Tensors that depend differentiably on some `wrt`. */
function forwardReach(order: Node[], wrt: string[], dtype: (v: string) => DataType | undefined): Set<string> {
  const live = new Set(wrt);
  for (const n of order) {
    if (NON_DIFFERENTIABLE.has(n.opType)) continue;
    if (!n.inputs.some((x, i) => x && live.has(x) && diffInput(n, i))) continue;
    for (const o of n.outputs) if (o && isFloatType(dtype(o))) live.add(o);
  }
  return live;
}

/** Live tensors the seeds depend on, and the nodes (reverse topological order) that need gradient code. */
function backwardNeed(order: Node[], live: Set<string>, seeds: string[]): { need: Set<string>; active: Node[] } {
  const need = new Set(seeds.filter((s) => live.has(s)));
  const active: Node[] = [];
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    if (NON_DIFFERENTIABLE.has(n.opType) || !n.outputs.some((o) => o && need.has(o))) continue;
    let any = false;
    n.inputs.forEach((x, i) => { if (x && live.has(x) && diffInput(n, i)) { need.add(x); any = true; } });
    if (any) active.push(n);
  }
  return { need, active };
}

/** Drops nodes and initializers no graph output depends on. */
function eliminateDeadNodes(g: Graph): void {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const used = new Set<string>();
  const keep = new Set<Node>();
  const stack = g.outputs.map((o) => o.name);
  while (stack.length) {
    const v = stack.pop()!;
    if (used.has(v)) continue;
    used.add(v);
    const n = producer.get(v);
    if (n && !keep.has(n)) { keep.add(n); for (const x of n.inputs) if (x) stack.push(x); }
  }
  g.nodes = g.nodes.filter((n) => keep.has(n));
  for (const k of [...g.initializers.keys()]) if (!used.has(k)) g.initializers.delete(k);
  g.valueInfo = g.valueInfo.filter((v) => used.has(v.name));
}
