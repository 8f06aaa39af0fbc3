/** Thin onnxruntime-node helpers: a session from an IR model, feeds cast to the graph's input types. */
import * as ort from 'onnxruntime-node';
import { DataType, Model, ValueInfo } from '../onnx/ir';
import { encodeModel } from '../onnx/proto';

/** A value to feed: dims plus numbers in any numeric array (cast to the input's type on feeding). */
export interface FeedValue {
  dims: number[];
  data: ArrayLike<number> | Float32Array;
}

/** Options for {@link createSession}. */
export interface SessionOptions {
  /** Graph optimisation level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  threads?: number;
}

/** Creates a CPU InferenceSession from an in-memory model. */
export async function createSession(model: Model, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const bytes = encodeModel(model);
  try {
    return await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      logSeverityLevel: 3,
      graphOptimizationLevel: opts.optimization ?? 'all',
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    });
  } catch (e) {
    throw new Error(`onnxruntime rejected the graph ${model.graph.name || '(unnamed)'}: ${(e as Error).message}`);
  }
}

/** Converts a feed to an ORT tensor of the input's element type. */
export function toOrtTensor(info: ValueInfo, v: FeedValue): ort.Tensor {
  const n = v.dims.reduce((a, b) => a * b, 1);
  if (v.data.length !== n) throw new Error(`feed ${info.name}: ${v.data.length} values do not fill dims [${v.dims.join(', ')}]`);
  switch (info.elemType) {
    case DataType.FLOAT: return new ort.Tensor('float32', v.data instanceof Float32Array ? v.data : Float32Array.from(v.data), v.dims);
    case DataType.DOUBLE: return new ort.Tensor('float64', Float64Array.from(v.data), v.dims);
    case DataType.INT64: return new ort.Tensor('int64', BigInt64Array.from(Array.from(v.data, (x) => BigInt(Math.round(x)))), v.dims);
    case DataType.INT32: return new ort.Tensor('int32', Int32Array.from(v.data, Math.round), v.dims);
    default: throw new Error(`feed ${info.name}: input type ${DataType[info.elemType]} is not supported here`);
  }
}

/** Runs `session` with feeds keyed by input name, checking every graph input is fed; returns float outputs. */
export async function runModel(session: ort.InferenceSession, model: Model, feeds: Map<string, FeedValue> | Record<string, FeedValue>, outputs?: string[]): Promise<Map<string, { dims: number[]; data: Float32Array }>> {
  const map = feeds instanceof Map ? feeds : new Map(Object.entries(feeds));
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const info of model.graph.inputs) {
    if (model.graph.initializers.has(info.name)) continue;
    const v = map.get(info.name);
    if (!v) throw new Error(`no value fed for graph input ${info.name}`);
    ortFeeds[info.name] = toOrtTensor(info, v);
  }
  const res = await session.run(ortFeeds, outputs ?? session.outputNames);
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const [k, t] of Object.entries(res)) {
    const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number);
    out.set(k, { dims: [...t.dims], data });
  }
  return out;
}
