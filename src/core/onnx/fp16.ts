/** Converts a float32 ONNX model to float16 compute with float32 inputs/outputs, keeping precision-critical ops in float32. */
import { AttrValue, DataType, Model, Node, Tensor, ValueInfo, cloneModel, topoSort } from './ir';
import { float32ToHalfBits, halfBitsToFloat32 } from '../safetensors';

/** Options of {@link toFloat16}. */
export interface Fp16Options {
  /** Op types computed in float32 (inputs cast up, outputs cast back). Default: the normalisations. */
  keepFp32Ops?: string[];
  /** Float graph inputs whose whole downstream arithmetic stays float32 until a MatMul/Gemm/Conv (e.g. a float timestep). */
  fp32Inputs?: string[];
  /** Nodes kept float32 by name or content, e.g. a loss subgraph (`isDdpoLossNode` of train/losses). */
  keepFp32Nodes?: (n: Node) => boolean;
  /** Keep float graph inputs/outputs float32 (Casts at the border). Default true. */
  keepIo?: boolean;
  /**
   * Float graph inputs/outputs that become float16 themselves whatever `keepIo` says: the caller converts on the host
   * (e.g. LoRA weights and their gradients, which would otherwise cost two Cast kernels per tensor and run).
   */
  halfIo?: (name: string) => boolean;
}

/** What the conversion did. */
export interface Fp16Report {
  initializersConverted: number;
  fp32Nodes: number;
  castsInserted: number;
}

/** Normalisations run in float32: their variance sums overflow or lose precision in float16 (as in PyTorch autocast). */
export const DEFAULT_KEEP_FP32 = ['InstanceNormalization', 'LayerNormalization', 'GroupNormalization'];
// Ops where autocast would cast to float16: they end float32 regions (their float inputs are cast down).
const HEAVY = new Set(['MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'Einsum', 'Attention', 'MultiHeadAttention']);
// Inputs that must stay float32 whatever the data type (Resize roi and scales).
const FP32_SLOTS: Record<string, number[]> = { Resize: [1, 2], Upsample: [1] };
// Ops that take any element type without tying it to other inputs.
const ANY_INPUT = new Set(['Shape', 'Size', 'Cast', 'CastLike']);
const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);

function outputType(n: Node, types: Map<string, DataType>): DataType {
  const attrTensor = (a: AttrValue | undefined) => (a?.type === 'tensor' ? a.value.dataType : undefined);
  switch (n.opType) {
    case 'Cast': return (n.attrs.to as { value: number }).value as DataType;
    case 'Shape': case 'Size': case 'ArgMax': case 'ArgMin': case 'NonZero': return DataType.INT64;
    case 'Constant': return attrTensor(n.attrs.value) ?? (n.attrs.value_float || n.attrs.value_floats ? DataType.FLOAT : DataType.INT64);
    case 'ConstantOfShape': return attrTensor(n.attrs.value) ?? DataType.FLOAT;
    case 'Where': return types.get(n.inputs[1]) ?? DataType.UNDEFINED;
    case 'CastLike': return types.get(n.inputs[1]) ?? DataType.UNDEFINED;
    default: return BOOL_OUT.has(n.opType) ? DataType.BOOL : types.get(n.inputs[0]) ?? DataType.UNDEFINED;
  }
}

function halfTensor(t: Tensor, name = t.name): Tensor {
  return { name, dataType: DataType.FLOAT16, dims: [...t.dims], data: float32ToHalfBits(t.data as Float32Array) };
}

/**
 * Float16 copy of `model`: float initializers and constants become float16, Casts to float become Casts to float16,
 * `keepFp32Ops` and the region fed by integer→float Casts (timestep embeddings, shape arithmetic) stay float32
 * until the next MatMul/Gemm/Conv, and float graph inputs/outputs stay float32 behind Casts.
 */
export function toFloat16(model: Model, opts: Fp16Options = {}): { model: Model; report: Fp16Report } {
  const m = cloneModel(model);
  const g = m.graph;
  const order = topoSort(g);
  const types = elementTypes(g, order);
  const fp32Node = float32Nodes(order, types, opts);
  const keepIo = opts.keepIo ?? true;
  const halfIo = (v: ValueInfo) => v.elemType === DataType.FLOAT && (!keepIo || !!opts.halfIo?.(v.name));
  const rw = new HalfRewrite(g, types, { initializersConverted: 0, fp32Nodes: fp32Node.size, castsInserted: 0 });
  g.inputs.forEach((v) => rw.stored.set(v.name, halfIo(v) ? DataType.FLOAT16 : v.elemType));
  for (const n of order) rw.node(n, fp32Node.has(n) ? DataType.FLOAT : DataType.FLOAT16);
  rw.initializers();
  rw.outputs(halfIo);
  for (const v of [...g.inputs, ...g.outputs]) if (halfIo(v)) v.elemType = DataType.FLOAT16;
  g.nodes = rw.out;
  g.valueInfo = g.valueInfo.map((v): ValueInfo => ({ ...v, elemType: rw.stored.get(v.name) ?? v.elemType }));
  m.metadata = { ...m.metadata, precision: 'float16' };
  return { model: m, report: rw.report };
}

// The element type of every value of the float32 graph.
function elementTypes(g: Model['graph'], order: Node[]): Map<string, DataType> {
  const types = new Map<string, DataType>();
  g.inputs.forEach((v) => types.set(v.name, v.elemType));
  for (const [k, t] of g.initializers) types.set(k, t.dataType);
  for (const n of order) { const t = outputType(n, types); n.outputs.forEach((o) => o && types.set(o, t)); }
  return types;
}

// The nodes that stay float32: `keepFp32Ops` and `keepFp32Nodes`, and the regions seeded by int→float Casts and
// fp32Inputs, closed by heavy ops.
function float32Nodes(order: Node[], types: Map<string, DataType>, opts: Fp16Options): Set<Node> {
  const keep = new Set(opts.keepFp32Ops ?? DEFAULT_KEEP_FP32);
  const region = new Set<string>(opts.fp32Inputs ?? []);
  const fp32Node = new Set<Node>();
  const keptNames = new Set<string>();
  for (const n of order) {
    const seeded = n.opType === 'Cast' && outputType(n, types) === DataType.FLOAT && types.get(n.inputs[0]) !== DataType.FLOAT;
    const inRegion = !HEAVY.has(n.opType) && n.inputs.some((i) => region.has(i));
    // the backward of a float32 node (autodiff names it `grad/<node>/<op>`) is float32 too, as under autocast:
    // a normalisation's recomputed variance overflows float16 just like its forward one
    const kept = keep.has(n.opType) || !!opts.keepFp32Nodes?.(n) || keptNames.has(gradientOf(n.name));
    if (kept && n.name) keptNames.add(n.name);
    if (kept || seeded || inRegion) fp32Node.add(n);
    if (seeded || (inRegion && !kept)) n.outputs.forEach((o) => o && region.add(o));
  }
  return fp32Node;
}

// The rewrite of the graph's nodes into float16 compute: the Casts it inserts, and the precision each float
// initializer is used in.
class HalfRewrite {
  /** The element type each float value now has. */
  readonly stored = new Map<string, DataType>();
  /** The rewritten nodes, Casts included, in order. */
  readonly out: Node[] = [];
  private readonly initUses = new Map<string, Set<DataType>>();
  private readonly castCache = new Map<string, string>();

  constructor(private readonly g: Model['graph'], private readonly types: Map<string, DataType>, readonly report: Fp16Report) {}

  /** Rewrites node `n` to compute in `prec`, casting its float inputs as it needs them. */
  node(n: Node, prec: DataType): void {
    const { g, types, stored } = this;
    // an Identity of a computed value passes on whatever precision it has: the objective's outputs (Identities of
    // float32 loss values) would otherwise round through float16, and an approx KL of 1e-7 is a float16 subnormal
    const src = n.opType === 'Identity' ? n.inputs[0] : '';
    if (src && !g.initializers.has(src) && types.get(src) === DataType.FLOAT) {
      stored.set(n.outputs[0], stored.get(src) ?? DataType.FLOAT);
      this.out.push(n);
      return;
    }
    n.inputs = n.inputs.map((v, i) => {
      if (!v || types.get(v) !== DataType.FLOAT) return v;
      if (ANY_INPUT.has(n.opType)) return g.initializers.has(v) ? this.asType(v, DataType.FLOAT) : v;
      return this.asType(v, FP32_SLOTS[n.opType]?.includes(i) ? DataType.FLOAT : prec);
    });
    if (prec === DataType.FLOAT16) halveAttrs(n);
    for (const o of n.outputs) {
      if (!o) continue;
      if (n.opType === 'Cast') stored.set(o, (n.attrs.to as { value: number }).value as DataType);
      else stored.set(o, types.get(o) === DataType.FLOAT && prec === DataType.FLOAT16 ? DataType.FLOAT16 : types.get(o)!);
    }
    this.out.push(n);
  }

  /** Initializers: converted in place when every use is float16, else a float32 copy is kept next to it. */
  initializers(): void {
    const { g, report } = this;
    const rename = new Map<string, string>();
    for (const [v, uses] of this.initUses) {
      const t = g.initializers.get(v)!;
      if (uses.has(DataType.FLOAT16)) { g.initializers.set(v, halfTensor(t)); rename.set(tag(v, DataType.FLOAT16), v); report.initializersConverted++; }
      if (uses.has(DataType.FLOAT)) {
        const name = uses.has(DataType.FLOAT16) ? `${v}_fp32` : v;
        g.initializers.set(name, { ...t, name });
        rename.set(tag(v, DataType.FLOAT), name);
      }
    }
    for (const n of this.out) n.inputs = n.inputs.map((v) => rename.get(v) ?? v);
  }

  /** Outputs get the type the border asks for, through a Cast when the value has the other one. */
  outputs(halfIo: (v: ValueInfo) => boolean): void {
    for (const o of this.g.outputs) {
      const have = this.stored.get(o.name);
      if (o.elemType !== DataType.FLOAT || (have !== DataType.FLOAT && have !== DataType.FLOAT16)) continue;
      const want = halfIo(o) ? DataType.FLOAT16 : DataType.FLOAT;
      if (have === want) continue;
      const inner = `${o.name}_fp${have === DataType.FLOAT16 ? 16 : 32}`;
      for (const n of this.out) { n.inputs = n.inputs.map((v) => (v === o.name ? inner : v)); n.outputs = n.outputs.map((v) => (v === o.name ? inner : v)); }
      this.out.push({ name: `${o.name}_Cast`, opType: 'Cast', domain: '', inputs: [inner], outputs: [o.name], attrs: { to: { type: 'int', value: want } } });
      this.report.castsInserted++;
    }
  }

  // Value `v` as element type `want`: a float initializer is tagged with the precision it is used in (resolved by
  // initializers()), a computed value goes through one shared Cast.
  private asType(v: string, want: DataType): string {
    const { g } = this;
    if (g.initializers.has(v) && g.initializers.get(v)!.dataType === DataType.FLOAT) {
      (this.initUses.get(v) ?? this.initUses.set(v, new Set()).get(v)!).add(want);
      return tag(v, want);
    }
    const have = this.stored.get(v) ?? this.types.get(v);
    if (have === want || (have !== DataType.FLOAT && have !== DataType.FLOAT16)) return v;
    const key = `${v}->${want}`;
    let c = this.castCache.get(key);
    if (!c) {
      c = `${v}_as_fp${want === DataType.FLOAT16 ? 16 : 32}`;
      this.out.push({ name: `${c}_Cast`, opType: 'Cast', domain: '', inputs: [v], outputs: [c], attrs: { to: { type: 'int', value: want } } });
      this.stored.set(c, want);
      this.castCache.set(key, c);
      this.report.castsInserted++;
    }
    return c;
  }
}

// The placeholder name of initializer `v` used in precision `t`.
const tag = (v: string, t: DataType) => `${v}@@${t === DataType.FLOAT16 ? 16 : 32}`;

/** The forward node an autodiff node `grad/<node>/<op>[_k]` belongs to ('' for other nodes). */
function gradientOf(name: string): string {
  return name.startsWith('grad/') ? name.slice(5, name.lastIndexOf('/')) : '';
}

/** Float constants carried in attributes become float16 (Cast targets, Constant and ConstantOfShape values). */
function halveAttrs(n: Node): void {
  const to = n.attrs.to;
  if (n.opType === 'Cast' && to?.type === 'int' && to.value === DataType.FLOAT) n.attrs.to = { type: 'int', value: DataType.FLOAT16 };
  const v = n.attrs.value;
  if ((n.opType === 'Constant' || n.opType === 'ConstantOfShape') && v?.type === 'tensor' && v.value.dataType === DataType.FLOAT) {
    n.attrs.value = { type: 'tensor', value: halfTensor(v.value) };
  }
  if (n.opType === 'Constant' && n.attrs.value_float) {
    const f = n.attrs.value_float as { value: number };
    delete n.attrs.value_float;
    n.attrs.value = { type: 'tensor', value: halfTensor({ name: '', dataType: DataType.FLOAT, dims: [], data: Float32Array.of(f.value) }) };
  }
}

/**
 * A float16 export widened to float32: float16 weights, constants, Cast targets and graph inputs/outputs become
 * float32, so training and LoRA (float32 adapters) see the same graph as a float32 export of the rounded weights.
 * A model without float16 comes back as it is; returns whether anything changed.
 */
export function toFloat32(model: Model): { model: Model; widened: boolean } {
  const g = model.graph;
  const half = (t: DataType) => t === DataType.FLOAT16;
  const any = [...g.initializers.values()].some((t) => half(t.dataType)) || [...g.inputs, ...g.outputs].some((v) => half(v.elemType))
    || g.nodes.some((n) => Object.values(n.attrs).some((a) => (a.type === 'int' && n.opType === 'Cast' && half(a.value)) || (a.type === 'tensor' && half(a.value.dataType))));
  if (!any) return { model, widened: false };
  const m = cloneModel(model);
  const wide = (t: Tensor): Tensor => (half(t.dataType) ? { ...t, dataType: DataType.FLOAT, data: halfBitsToFloat32(t.data as Uint16Array) } : t);
  for (const [k, t] of m.graph.initializers) m.graph.initializers.set(k, wide(t));
  for (const n of m.graph.nodes) {
    for (const [k, a] of Object.entries(n.attrs)) {
      if (a.type === 'tensor') n.attrs[k] = { type: 'tensor', value: wide(a.value) };
      else if (a.type === 'int' && (k === 'to' || k === 'dtype') && half(a.value)) n.attrs[k] = { type: 'int', value: DataType.FLOAT };
    }
  }
  for (const v of [...m.graph.inputs, ...m.graph.outputs, ...m.graph.valueInfo]) if (half(v.elemType)) v.elemType = DataType.FLOAT;
  m.metadata = { ...m.metadata, precision: 'float32' };
  return { model: m, widened: true };
}
