// Test oracle for shape inference: run the model in onnxruntime with every tensor exposed as an output.
import * as ort from 'onnxruntime-node';
import { DataType, Model, cloneModel } from '../../../src/core/onnx/ir';
import { encodeModel } from '../../../src/core/onnx/proto';

/** ORT tensor type names by ONNX data type. */
export const ORT_TYPE: Partial<Record<DataType, string>> = {
  [DataType.FLOAT]: 'float32', [DataType.DOUBLE]: 'float64', [DataType.INT64]: 'int64', [DataType.INT32]: 'int32',
  [DataType.BOOL]: 'bool', [DataType.UINT8]: 'uint8', [DataType.INT8]: 'int8', [DataType.FLOAT16]: 'float16',
};

/** Runs a model and returns its named outputs. */
export async function runModel(model: Model, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(encodeModel(model));
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/**
 * Actual type and dims of every node output, found by running ORT with all of them as graph outputs.
 * `typeOf` gives each output's element type (ORT needs a declared type; a wrong one makes the run fail).
 */
export async function shapesByRunning(
  model: Model, feeds: Record<string, ort.Tensor>, typeOf: (name: string) => DataType,
): Promise<Map<string, { type: string; dims: number[] }>> {
  const m = cloneModel(model);
  const outs = new Set(m.graph.outputs.map((o) => o.name));
  for (const n of m.graph.nodes) {
    for (const o of n.outputs) if (o && !outs.has(o)) { outs.add(o); m.graph.outputs.push({ name: o, elemType: typeOf(o), shape: null }); }
  }
  m.graph.valueInfo = [];
  const res = await runModel(m, feeds);
  return new Map(Object.entries(res).map(([k, t]) => [k, { type: t.type, dims: [...t.dims].map(Number) }]));
}
