/** Thin onnxruntime-node helpers: a session from an IR model, feeds cast to the graph's input types. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, Model, ValueInfo } from '../onnx/ir';
import { encodeModel, saveModel } from '../onnx/proto';
import { isContribNode, lowerContribOps } from '../onnx/lowerContrib';
import { float32ToHalfBits } from '../safetensors';
import { tensorToFloat32 } from './ortModel';
import { missingKernel } from './ortLoadError';
import type { OpenedSession } from './providers';
import { CPU_ONLY, openSession, type SessionProviders } from './sessionProviders';

/** A value to feed: dims plus numbers in any numeric array (cast to the input's type on feeding; a Uint16Array for a float16 input is half bits). */
export interface FeedValue {
  dims: number[];
  data: ArrayLike<number> | Float32Array;
}

/** Options for {@link createSession}. */
export interface SessionOptions {
  /** Graph optimisation level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  threads?: number;
  /** Providers to try, best first (default CPU only). */
  providers?: SessionProviders;
  /** Names the model in provider reports and errors (default the graph's name). */
  name?: string;
  /** Initializer bytes above which the model opens from a temp folder with external data (default 1.5 GiB: protobuf cannot hold 2 GiB). */
  externalDataAbove?: number;
  /** Where that temp folder goes (default the OS temp folder; it needs room for every weight). */
  tempDir?: string;
  /** More onnxruntime session options (e.g. a UNet's `freeDimensionOverrides`). */
  extra?: ort.InferenceSession.SessionOptions;
  /** Lower every fused com.microsoft op to standard operators before opening (else only when a provider lacks a kernel). */
  lowerFused?: boolean;
}

/** The default of {@link SessionOptions.externalDataAbove}. */
export const EXTERNAL_DATA_ABOVE = 1.5 * 2 ** 30;

/** A session from {@link openModel}: where it runs, what failed first, and the temp folder of a large model. */
export interface OpenedModel extends OpenedSession {
  /** Set when the model was written to disk with external data; removed when the session is released. */
  externalDataDir?: string;
  /** The fused com.microsoft ops that run lowered to standard operators, because the provider had no kernel for one. */
  loweredOps?: string[];
}


/** Creates an InferenceSession from an in-memory model (on CPU unless `opts.providers` says otherwise). */
export async function createSession(model: Model, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  return (await openModel(model, opts)).session;
}

/**
 * Opens an in-memory model on the first provider that works. Models whose weights exceed `externalDataAbove`
 * are saved to a temp folder as model.onnx + model.onnx_data and opened by path; releasing the session removes it.
 * Fused com.microsoft ops a provider has no kernel for are lowered to standard operators (onnx/lowerContrib.ts).
 */
export async function openModel(model: Model, opts: SessionOptions = {}): Promise<OpenedModel> {
  if (opts.lowerFused) return (await openLowered(model, opts)) ?? openAsIs(model, opts);
  const crashing = crashingFusedOps(model);
  if (crashing.size) model = lowerContribOps(model, crashing).model;
  try {
    return await openAsIs(model, opts);
  } catch (e) {
    // a fused com.microsoft op the provider has no kernel for (GroupNorm, NhwcConv, ... on the CPU): its standard form runs
    if (!missingKernel((e as Error).message)) throw e;
    const lowered = await openLowered(model, opts);
    if (!lowered) throw e;
    return lowered;
  }
}

/**
 * Fused ops whose onnxruntime kernel kills the process instead of failing: SkipLayerNormalization asked for its mean
 * or inv_std_var output (outputs 1, 2) crashes onnxruntime-node 1.29's CPU kernel with SIGSEGV, which no catch can
 * turn into an error, so such nodes run as standard operators from the start.
 */
export function crashingFusedOps(model: Model): Set<string> {
  const sln = model.graph.nodes.some((n) => isContribNode(n) && n.opType === 'SkipLayerNormalization' && (!!n.outputs[1] || !!n.outputs[2]));
  return new Set(sln ? ['SkipLayerNormalization'] : []);
}

// the model with its fused com.microsoft ops lowered to standard ones, opened; undefined when it has none to lower
async function openLowered(model: Model, opts: SessionOptions): Promise<OpenedModel | undefined> {
  if (!model.graph.nodes.some(isContribNode)) return undefined;
  const lowered = lowerContribOps(model);
  if (!lowered.lowered.size) return undefined;
  return { ...(await openAsIs(lowered.model, opts)), loweredOps: [...lowered.lowered.keys()] };
}

async function openAsIs(model: Model, opts: SessionOptions): Promise<OpenedModel> {
  const name = opts.name ?? (model.graph.name || '(unnamed graph)');
  const options: ort.InferenceSession.SessionOptions = {
    logSeverityLevel: 3,
    graphOptimizationLevel: opts.optimization ?? 'all',
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    ...opts.extra,
  };
  const large = initializerBytes(model) > (opts.externalDataAbove ?? EXTERNAL_DATA_ABOVE);
  const parent = opts.tempDir ?? os.tmpdir();
  if (large) sweepStaleSessionDirs(parent);
  const dir = large ? fs.mkdtempSync(path.join(parent, SESSION_DIR_PREFIX)) : undefined;
  try {
    let source: string | Uint8Array;
    if (dir) {
      liveTempDirs.add(dir);
      fs.writeFileSync(path.join(dir, OWNER_FILE), String(process.pid));
      source = path.join(dir, 'model.onnx');
      saveModel(model, source, { externalData: 'model.onnx_data', scratch: true });
    } else source = encodeModel(model);
    const opened = await openSession(source, name, opts.providers ?? CPU_ONLY, options);
    if (dir) removeOnRelease(opened.session, dir);
    return { ...opened, externalDataDir: dir };
  } catch (e) {
    if (dir) removeTempDir(dir);
    const where = dir ? ` (saved with external data in ${dir})` : '';
    throw new Error(`onnxruntime rejected the graph ${name}${where}: ${(e as Error).message}`);
  }
}

/** Bytes of a model's initializers (what must fit in one protobuf when the model is opened from memory). */
export function initializerBytes(model: Model): number {
  let n = 0;
  for (const t of model.graph.initializers.values()) n += t.data.byteLength;
  return n;
}

const SESSION_DIR_PREFIX = 'ddpo-session-';
const OWNER_FILE = 'owner.pid';

/**
 * Removes session temp folders in `parent` whose owning process is gone (a worker killed with SIGKILL cannot clean
 * up; an SD 1.5 training graph leaves 3.4 GB). Folders of live processes, and ones without an owner file, stay.
 * Returns the folders removed.
 */
export function sweepStaleSessionDirs(parent: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try { names = fs.readdirSync(parent).filter((n) => n.startsWith(SESSION_DIR_PREFIX)); } catch { return removed; }
  for (const n of names) {
    const dir = path.join(parent, n);
    let pid: number;
    try { pid = Number(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8')); } catch { continue; }
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    fs.rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

// Temp folders of open large-model sessions; whatever is left is removed when the process exits.
const liveTempDirs = new Set<string>();
process.once('exit', () => { for (const d of liveTempDirs) removeTempDir(d); });

function removeTempDir(dir: string): void {
  liveTempDirs.delete(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

function removeOnRelease(session: ort.InferenceSession, dir: string): void {
  const release = session.release.bind(session);
  session.release = async () => {
    try {
      await release();
    } finally {
      removeTempDir(dir);
    }
  };
}

/** Converts a feed to an ORT tensor of the input's element type. */
export function toOrtTensor(info: ValueInfo, v: FeedValue): ort.Tensor {
  const n = v.dims.reduce((a, b) => a * b, 1);
  if (v.data.length !== n) throw new Error(`feed ${info.name}: ${v.data.length} values do not fill dims [${v.dims.join(', ')}]`);
  switch (info.elemType) {
    case DataType.FLOAT: return new ort.Tensor('float32', v.data instanceof Float32Array ? v.data : Float32Array.from(v.data), v.dims);
    // a Uint16Array fed to a float16 input is taken as IEEE half bits already (converted once, fed many times)
    case DataType.FLOAT16: return new ort.Tensor('float16', v.data instanceof Uint16Array ? v.data : float32ToHalfBits(v.data instanceof Float32Array ? v.data : Float32Array.from(v.data)), v.dims);
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
    out.set(k, { dims: [...t.dims], data: tensorToFloat32(t) });
  }
  return out;
}
