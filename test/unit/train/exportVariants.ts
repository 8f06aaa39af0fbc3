/**
 * The reference UNet rewritten into the forms other exporters write, with the same weights and the same math, so each
 * variant must still match the PyTorch oracles: anonymous names (dynamo), constants as initializers, opsets 14..21,
 * GroupNormalization-21, Gelu, Split with a sizes input, linear weights behind a Transpose, float16 weights and I/O.
 */
import { A, GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, Model, Node, Tensor, cloneModel, makeTensor, toNumbers, topoSort } from '../../../src/core/onnx/ir';
import { toFloat16 } from '../../../src/core/onnx/fp16';
import { float32ToHalfBits, halfBitsToFloat32 } from '../../../src/core/safetensors';

interface Index { producer: Map<string, Node>; consumers: Map<string, Node[]> }

function index(m: Model): Index {
  const producer = new Map<string, Node>(), consumers = new Map<string, Node[]>();
  for (const n of m.graph.nodes) {
    n.outputs.forEach((o) => producer.set(o, n));
    n.inputs.forEach((i) => { if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]); });
  }
  return { producer, consumers };
}

// the constant behind a value (an initializer or a Constant node, through Identity nodes), if any
function constOf(m: Model, ix: Index, v: string): Tensor | undefined {
  const t = m.graph.initializers.get(v);
  if (t) return t;
  const p = ix.producer.get(v);
  if (p?.opType === 'Identity') return constOf(m, ix, p.inputs[0]);
  return p?.opType === 'Constant' && p.attrs.value?.type === 'tensor' ? p.attrs.value.value : undefined;
}

function only(ix: Index, v: string, op: string): Node | undefined {
  const c = ix.consumers.get(v) ?? [];
  return c.length === 1 && c[0].opType === op ? c[0] : undefined;
}

/** Node names `node_<Op>_<k>`, every value and weight renamed: nothing names a module any more. */
export function anonymize(model: Model): Model {
  const m = cloneModel(model);
  const g = m.graph;
  const keep = new Set([...g.inputs.map((v) => v.name), ...g.outputs.map((v) => v.name)]);
  const names = new Map<string, string>();
  let k = 0;
  const rename = (v: string) => (!v || keep.has(v) ? v : names.get(v) ?? (names.set(v, `val_${k++}`), names.get(v)!));
  g.initializers = new Map([...g.initializers].map(([n, t]) => [rename(n), { ...t, name: rename(n) }]));
  g.nodes.forEach((n, i) => { n.name = `node_${n.opType}_${i}`; n.inputs = n.inputs.map(rename); n.outputs = n.outputs.map(rename); });
  g.valueInfo = [];
  return m;
}

/** Constant nodes become initializers, as the dynamo exporter writes constants. */
export function constantsAsInitializers(model: Model): Model {
  const m = cloneModel(model);
  const g = m.graph;
  g.nodes = g.nodes.filter((n) => {
    if (n.opType !== 'Constant' || n.attrs.value?.type !== 'tensor') return true;
    g.initializers.set(n.outputs[0], { ...n.attrs.value.value, name: n.outputs[0] });
    return false;
  });
  return m;
}

/** The default-domain opset set to `v` (14..21); below 17 LayerNormalization is written out as exporters did then. */
export function atOpset(model: Model, v: number): Model {
  const m = cloneModel(model);
  m.opsetImports = m.opsetImports.map((o) => (o.domain === '' ? { ...o, version: v } : o));
  if (v >= 17) return m;
  const b = new GraphBuilder(m.graph);
  const out: Node[] = [];
  for (const n of m.graph.nodes) {
    if (n.opType !== 'LayerNormalization') { out.push(n); continue; }
    const before = m.graph.nodes.length;
    const [x, w, bias] = n.inputs;
    const eps = n.attrs.epsilon?.type === 'float' ? n.attrs.epsilon.value : 1e-5;
    const mean = b.op('ReduceMean', [x], { axes: A.ints([-1]) });
    const d = b.op('Sub', [x, mean]);
    const variance = b.op('ReduceMean', [b.op('Pow', [d, b.scalar(2)])], { axes: A.ints([-1]) });
    const y = b.op('Div', [d, b.op('Sqrt', [b.op('Add', [variance, b.scalar(Math.fround(eps))])])]);
    b.op('Add', [b.op('Mul', [y, w]), bias], {}, { outputs: [n.outputs[0]] });
    out.push(...m.graph.nodes.splice(before));
  }
  m.graph.nodes = out;
  return m;
}

/** TorchScript's GroupNorm (Reshape, InstanceNormalization, Reshape, Mul, Add) as one GroupNormalization (opset 21). */
export function withGroupNormalization(model: Model): Model {
  const m = atOpset(model, 21);
  const g = m.graph;
  const ix = index(m);
  const drop = new Set<Node>();
  const added: Node[] = [];
  for (const inorm of g.nodes) {
    if (inorm.opType !== 'InstanceNormalization') continue;
    const r1 = ix.producer.get(inorm.inputs[0]);
    const r2 = only(ix, inorm.outputs[0], 'Reshape');
    const mul = r2 && only(ix, r2.outputs[0], 'Mul');
    const add = mul && only(ix, mul.outputs[0], 'Add');
    const target = r1 && constOf(m, ix, r1.inputs[1]);
    const scale = mul && constOf(m, ix, mul.inputs[1]);
    const bias = add && constOf(m, ix, add.inputs[1]);
    if (!r1 || r1.opType !== 'Reshape' || !target || !add || !scale || !bias) continue;
    const groups = toNumbers(target)[1];
    const C = scale.dims[0];
    const perChannel = (t: Tensor, what: string) => { const name = `${add.name}/${what}`; g.initializers.set(name, { ...t, name, dims: [C] }); return name; };
    [r1, inorm, r2!, mul!, add].forEach((n) => drop.add(n));
    added.push({
      name: `${add.name}/GroupNormalization`, opType: 'GroupNormalization', domain: '', inputs: [r1.inputs[0], perChannel(scale, 'scale'), perChannel(bias, 'bias')], outputs: [add.outputs[0]],
      attrs: { num_groups: A.i(groups), epsilon: inorm.attrs.epsilon ?? A.f(1e-5) },
    });
  }
  g.nodes = [...g.nodes.filter((n) => !drop.has(n)), ...added];
  return sorted(m);
}

/** The erf form of GELU (Div √2, Erf, Add 1, Mul x, Mul 0.5) as one Gelu (opset 20). */
export function withGelu(model: Model): Model {
  const m = atOpset(model, Math.max(20, model.opsetImports.find((o) => o.domain === '')?.version ?? 17));
  const g = m.graph;
  const ix = index(m);
  const drop = new Set<Node>();
  const added: Node[] = [];
  for (const erf of g.nodes) {
    if (erf.opType !== 'Erf') continue;
    const div = ix.producer.get(erf.inputs[0]);
    const add = only(ix, erf.outputs[0], 'Add');
    const mx = add && only(ix, add.outputs[0], 'Mul');
    const half = mx && only(ix, mx.outputs[0], 'Mul');
    if (!div || div.opType !== 'Div' || !half) continue;
    [div, erf, add!, mx!, half].forEach((n) => drop.add(n));
    added.push({ name: `${half.name}/Gelu`, opType: 'Gelu', domain: '', inputs: [div.inputs[0]], outputs: [half.outputs[0]], attrs: {} });
  }
  g.nodes = [...g.nodes.filter((n) => !drop.has(n)), ...added];
  return sorted(m);
}

/** GEGLU's two Slices of the projection (hidden, gate) as one Split with a sizes input. */
export function withSplitSizes(model: Model): Model {
  const m = cloneModel(model);
  const g = m.graph;
  const ix = index(m);
  const drop = new Set<Node>();
  const added: Node[] = [];
  const b = new GraphBuilder(g);
  for (const [v, readers] of ix.consumers) {
    const slices = readers.filter((n) => n.opType === 'Slice' && n.inputs[0] === v);
    if (slices.length !== 2) continue;
    const startOf = (n: Node) => { const t = constOf(m, ix, n.inputs[1]); return t ? toNumbers(t)[0] : undefined; };
    const hidden = slices.find((n) => startOf(n) === 0), gate = slices.find((n) => n !== hidden);
    const bias = readers.length && ix.producer.get(v)?.inputs.map((i) => g.initializers.get(i)).find((t) => t?.dims.length === 1);
    if (!hidden || !gate || !bias) continue;
    const inner = bias.dims[0] / 2;
    slices.forEach((n) => drop.add(n));
    added.push({ name: `${hidden.name}/Split`, opType: 'Split', domain: '', inputs: [v, b.constI64([inner, inner])], outputs: [hidden.outputs[0], gate.outputs[0]], attrs: { axis: A.i(-1) } });
  }
  g.nodes = [...g.nodes.filter((n) => !drop.has(n)), ...added];
  return sorted(m);
}

/** Linear weights stored `[out, in]` and transposed in the graph (`MatMul(x, Transpose(W))`), as dynamo writes nn.Linear. */
export function withTransposedWeights(model: Model): Model {
  const m = cloneModel(model);
  const g = m.graph;
  const b = new GraphBuilder(g);
  const done = new Map<string, string>();
  for (const n of [...g.nodes]) {
    const w = n.opType === 'MatMul' ? g.initializers.get(n.inputs[1]) : undefined;
    if (!w || w.dims.length !== 2) continue;
    let t = done.get(w.name);
    if (!t) {
      const [rows, cols] = w.dims;
      const src = w.data as Float32Array, data = new Float32Array(src.length);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[j * rows + i] = src[i * cols + j];
      const name = b.initializer({ name: `${w.name}_out_in`, dataType: DataType.FLOAT, dims: [cols, rows], data });
      t = b.op('Transpose', [name], { perm: A.ints([1, 0]) }, { name: `${n.name}/Transpose` });
      done.set(w.name, t);
    }
    n.inputs[1] = t;
  }
  for (const k of done.keys()) if (!g.nodes.some((n) => n.inputs.includes(k))) g.initializers.delete(k);
  return sorted(m);
}

/** What the dynamo exporter writes at opset 21: all of the above, and every shape fixed. */
export function dynamoStyle(model: Model): Model {
  return anonymize(withTransposedWeights(withSplitSizes(withGelu(withGroupNormalization(constantsAsInitializers(model))))));
}

/** A float16 export (weights, sample, text embeddings and prediction in float16), as `optimum-cli export onnx --dtype fp16` writes. */
export function fp16Export(model: Model): Model {
  return toFloat16(model, { keepIo: false }).model;
}

/** The float32 model whose weights are those of {@link fp16Export}: the same math in float32. */
export function withHalfRoundedWeights(model: Model): Model {
  const m = cloneModel(model);
  for (const [k, t] of m.graph.initializers) {
    if (t.dataType === DataType.FLOAT && t.dims.length >= 1) m.graph.initializers.set(k, makeTensor(k, DataType.FLOAT, t.dims, halfBitsToFloat32(float32ToHalfBits(t.data as Float32Array))));
  }
  return m;
}

function sorted(m: Model): Model {
  m.graph.nodes = topoSort(m.graph);
  return m;
}
