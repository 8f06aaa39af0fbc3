/** Test helpers: run IR models in onnxruntime-node CPU and read every intermediate tensor's shape. */
import * as ort from 'onnxruntime-node';
import { DataType, Model, cloneModel, topoSort } from '../../../src/core/onnx/ir';
import { encodeModel } from '../../../src/core/onnx/proto';

export type ShapeMap = Map<string, { elemType: DataType; dims: number[] }>;
export type Feeds = Record<string, ort.Tensor>;

const ORT_TYPES: Record<string, DataType> = {
  float32: DataType.FLOAT, float64: DataType.DOUBLE, int64: DataType.INT64, int32: DataType.INT32,
  bool: DataType.BOOL, uint8: DataType.UINT8, int8: DataType.INT8, float16: DataType.FLOAT16,
};

/** Creates a CPU session for an IR model. */
export async function session(model: Model): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(model), { executionProviders: ['cpu'], graphOptimizationLevel: 'basic' });
}

/** Runs the model once with every node output exposed, returning its static shapes and element types. */
export async function ortShapes(model: Model, feeds: Feeds): Promise<ShapeMap> {
  const m = cloneModel(model);
  const types = guessTypes(m);
  const known = new Set(m.graph.outputs.map((o) => o.name));
  for (const n of m.graph.nodes) for (const o of n.outputs) {
    if (o && !known.has(o)) { known.add(o); m.graph.outputs.push({ name: o, elemType: types.get(o) ?? DataType.FLOAT, shape: null }); }
  }
  const s = await session(m);
  const res = await s.run(feeds);
  const shapes: ShapeMap = new Map();
  for (const [name, t] of Object.entries(res)) shapes.set(name, { elemType: ORT_TYPES[t.type] ?? DataType.UNDEFINED, dims: t.dims.map(Number) });
  for (const [name, t] of Object.entries(feeds)) shapes.set(name, { elemType: ORT_TYPES[t.type] ?? DataType.UNDEFINED, dims: t.dims.map(Number) });
  for (const [name, t] of m.graph.initializers) shapes.set(name, { elemType: t.dataType, dims: t.dims });
  await s.release();
  return shapes;
}

const BOOL_OPS = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
const I64_OPS = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);

// ORT needs an element type on every graph output; a forward propagation is enough for the test models.
function guessTypes(m: Model): Map<string, DataType> {
  const t = new Map<string, DataType>();
  for (const v of m.graph.inputs) t.set(v.name, v.elemType);
  for (const [k, v] of m.graph.initializers) t.set(k, v.dataType);
  for (const n of topoSort(m.graph)) {
    const a = n.attrs;
    let dt = t.get(n.inputs[n.opType === 'Where' ? 1 : 0]) ?? DataType.FLOAT;
    if (BOOL_OPS.has(n.opType)) dt = DataType.BOOL;
    else if (I64_OPS.has(n.opType)) dt = DataType.INT64;
    else if (n.opType === 'Cast' && a.to?.type === 'int') dt = a.to.value;
    else if ((n.opType === 'Constant' || n.opType === 'ConstantOfShape')) dt = a.value?.type === 'tensor' ? a.value.value.dataType : DataType.FLOAT;
    n.outputs.forEach((o, i) => o && t.set(o, i > 0 && n.opType === 'LayerNormalization' ? DataType.FLOAT : dt));
  }
  return t;
}
