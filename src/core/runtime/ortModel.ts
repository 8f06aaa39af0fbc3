import * as ort from 'onnxruntime-node';
import * as nodePath from 'node:path';
import { float32ToHalfBits, halfBitsToFloat32 } from '../safetensors';
import type { ExecutionProvider } from './providers';
import { openSession, type SessionProviders } from './sessionProviders';
import { explainLoadFailure } from './ortLoadError';

/** Declared type and shape of one model input or output (from the session's metadata). */
export interface IoSpec {
  name: string;
  type: ort.Tensor.Type;
  /** Numbers are fixed sizes, strings symbolic (dynamic) dimensions. */
  shape: readonly (number | string)[];
}

/** Numeric data we feed; converted to the declared element type on the way in. */
export type HostData = Float32Array | number[] | readonly number[];

/** An ONNX model loaded once and reused for every call, with its I/O metadata. */
export class OrtModel {
  readonly inputs: IoSpec[];
  readonly outputs: IoSpec[];
  /** The provider the session was opened on (asked for, with {@link OrtModel.load}). */
  ep: ExecutionProvider = 'cpu';

  private constructor(readonly session: ort.InferenceSession, readonly path: string) {
    const specs = (m: readonly ort.InferenceSession.ValueMetadata[]) =>
      m.map((v) => (v.isTensor ? { name: v.name, type: v.type, shape: v.shape } : { name: v.name, type: 'float32' as const, shape: [] }));
    this.inputs = specs(session.inputMetadata);
    this.outputs = specs(session.outputMetadata);
  }

  /** The fused com.microsoft ops it runs lowered to standard operators (the provider had no kernel for one). */
  loweredOps?: string[];

  /** A model over a session opened elsewhere (e.g. from a graph rewritten in memory); `path` names it in errors. */
  static wrap(session: ort.InferenceSession, path: string, ep: ExecutionProvider, loweredOps?: string[]): OrtModel {
    const m = new OrtModel(session, path);
    m.ep = ep;
    m.loweredOps = loweredOps;
    return m;
  }

  /** Creates a session on `ep`; errors name the file and suggest the CPU provider. */
  static async load(path: string, ep: ExecutionProvider = 'cpu', extra: ort.InferenceSession.SessionOptions = {}): Promise<OrtModel> {
    const providers: ort.InferenceSession.ExecutionProviderConfig[] = ep === 'cpu' ? ['cpu'] : [ep, 'cpu'];
    try {
      const session = await ort.InferenceSession.create(path, { executionProviders: providers, graphOptimizationLevel: 'all', ...extra });
      const m = new OrtModel(session, path);
      m.ep = ep;
      return m;
    } catch (e) {
      const msg = (e as Error).message;
      const hint = ep !== 'cpu' && /provider|backend|not (found|supported|available)/i.test(msg)
        ? `execution provider '${ep}' is not available in this onnxruntime-node build; use --ep cpu`
        : explainLoadFailure(msg, path);
      throw new Error(`Could not load ONNX model ${path}: ${msg}\n  ${hint}`);
    }
  }

  /** Opens `path` on the first of `providers` that works (CPU last), reported as `<folder>/<file>`; errors name the file. */
  static async open(path: string, providers: SessionProviders, extra: ort.InferenceSession.SessionOptions = {}): Promise<OrtModel> {
    const what = `${nodePath.basename(nodePath.dirname(path))}/${nodePath.basename(path)}`;
    try {
      const opened = await openSession(path, what, providers, { graphOptimizationLevel: 'all', ...extra });
      const m = new OrtModel(opened.session, path);
      m.ep = opened.ep;
      return m;
    } catch (e) {
      throw new Error(`Could not load ONNX model ${path}: ${(e as Error).message}\n  ${explainLoadFailure((e as Error).message, path)}`);
    }
  }

  /** The input matching `pick` (by name first, then by predicate); errors list what the model declares. */
  input(names: string[], predicate?: (s: IoSpec) => boolean): IoSpec {
    const found = this.inputs.find((s) => names.includes(s.name)) ?? (predicate ? this.inputs.find(predicate) : undefined);
    if (!found) throw new Error(`${this.path} has no input like ${names.join('/')}; it declares ${this.describe(this.inputs)}`);
    return found;
  }

  /** The output named one of `names`, else the first output. */
  output(names: string[]): IoSpec {
    return this.outputs.find((s) => names.includes(s.name)) ?? this.outputs[0];
  }

  /** Fixed batch size declared on the first axis of an input, or undefined when dynamic. */
  fixedBatch(spec: IoSpec): number | undefined {
    return typeof spec.shape[0] === 'number' && spec.shape.length > 0 ? (spec.shape[0] as number) : undefined;
  }

  /** Runs the model; `feeds` are already ort tensors. Errors name the model file. */
  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    if (this.released) throw new Error(`${this.path} was released (its session is closed); load the model again to run it`);
    try {
      return (await this.session.run(feeds)) as Record<string, ort.Tensor>;
    } catch (e) {
      const shapes = Object.entries(feeds).map(([k, t]) => `${k} ${t.type}[${t.dims.join(',')}]`).join(', ');
      throw new Error(`Running ${this.path} failed with inputs ${shapes}: ${(e as Error).message}`);
    }
  }

  private released = false;

  /** Frees the native session (once; later calls do nothing). Its I/O metadata stays readable. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }

  private describe(specs: IoSpec[]): string {
    return specs.map((s) => `${s.name} ${s.type}[${s.shape.join(',')}]`).join(', ');
  }
}

/** Builds a tensor of the spec's declared element type from float/integer host data. */
export function tensorFor(spec: IoSpec, data: HostData, dims: readonly number[]): ort.Tensor {
  switch (spec.type) {
    case 'float32': return new ort.Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data), dims);
    case 'float16': return new ort.Tensor('float16', float32ToHalfBits(data instanceof Float32Array ? data : Float32Array.from(data)), dims);
    case 'float64': return new ort.Tensor('float64', Float64Array.from(data), dims);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (v) => BigInt(Math.round(v)))), dims);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(data, (v) => Math.round(v)), dims);
    default: throw new Error(`Input ${spec.name} has element type ${spec.type}, which the pipeline cannot feed (expected float32/float16/int32/int64)`);
  }
}

/** A tensor's values as float32 (float16 outputs arrive as raw Uint16 bits). */
export function tensorToFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const d = t.data as unknown;
    return d instanceof Uint16Array ? halfBitsToFloat32(d) : Float32Array.from(d as ArrayLike<number>);
  }
  if (t.type === 'int64') return Float32Array.from(t.data as BigInt64Array, Number);
  return Float32Array.from(t.data as ArrayLike<number>);
}

/** A tensor's values as float32 on the host, downloading (and releasing) it first when it lives in a GPU buffer. */
export async function readFloat32(t: ort.Tensor): Promise<Float32Array> {
  if (t.location === 'cpu') return tensorToFloat32(t);
  const data = await t.getData(true);
  return tensorToFloat32(new ort.Tensor(t.type as 'float32', data as Float32Array, t.dims));
}
