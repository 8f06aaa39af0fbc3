/** ONNX ModelProto <-> IR, with external data (weights.pb, model.onnx_data, *.onnx.data). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFileSync, writeFilesAtomicallySync } from '../fsutil';
import { PbReader, PbWriter, Wire } from './protobuf';
import {
  AttrValue, DataType, Dim, Graph, Model, Node, Tensor, ValueInfo,
  allocData, bytesOfData, dataFromBytes, elemBytes, numel,
} from './ir';

export interface DecodeOptions {
  /** Folder that external-data locations are relative to (required if the model uses external data). */
  baseDir?: string;
  /** Source name for error messages. */
  source?: string;
}

/** Parses ONNX bytes into the IR, reading external data files from `baseDir`. */
export function decodeModel(bytes: Uint8Array, opts: DecodeOptions = {}): Model {
  const ctx = new DecodeCtx(opts);
  try {
    return decodeModelProto(new PbReader(bytes), ctx);
  } finally {
    ctx.close();
  }
}

/** Loads an .onnx file (and its external data beside it). */
export function loadModel(file: string): Model {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ONNX model ${file}: ${(e as Error).message}`);
  }
  try {
    return decodeModel(bytes, { baseDir: path.dirname(file), source: file });
  } catch (e) {
    throw new Error(`${file} is not a valid ONNX model (${(e as Error).message}); re-export or re-download it`);
  }
}

class DecodeCtx {
  private fds = new Map<string, number>();
  constructor(readonly opts: DecodeOptions) {}
  readExternal(location: string, offset: number, length: number | undefined): Uint8Array {
    if (!this.opts.baseDir) throw new Error(`tensor data lives in external file ${location} but no base folder was given`);
    const base = path.resolve(this.opts.baseDir);
    const file = path.resolve(base, location);
    if (file !== base && !file.startsWith(base + path.sep)) throw new Error(`external data location ${location} escapes the model folder`);
    let fd = this.fds.get(file);
    if (fd === undefined) {
      try { fd = fs.openSync(file, 'r'); } catch { throw new Error(`external data file ${location} is missing next to ${this.opts.source ?? 'the model'}`); }
      this.fds.set(file, fd);
    }
    const len = length ?? fs.fstatSync(fd).size - offset;
    const out = new Uint8Array(len);
    const n = fs.readSync(fd, out, 0, len, offset);
    if (n !== len) throw new Error(`external data file ${location} is truncated (wanted ${len} bytes at ${offset}, got ${n})`);
    return out;
  }
  close(): void { for (const fd of this.fds.values()) fs.closeSync(fd); }
}

function decodeModelProto(r: PbReader, ctx: DecodeCtx): Model {
  const m: Model = { irVersion: 0, producerName: '', producerVersion: '', opsetImports: [], graph: undefined as unknown as Graph, metadata: {} };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1 && w === Wire.Varint) m.irVersion = r.int();
    else if (f === 2 && w === Wire.Bytes) m.producerName = r.string();
    else if (f === 3 && w === Wire.Bytes) m.producerVersion = r.string();
    else if (f === 7 && w === Wire.Bytes) m.graph = decodeGraph(r.sub(), ctx);
    else if (f === 8 && w === Wire.Bytes) {
      const s = r.sub();
      const o = { domain: '', version: 0 };
      while (!s.done()) {
        const [g, x] = s.tag();
        if (g === 1) o.domain = s.string(); else if (g === 2) o.version = s.int(); else s.skip(x);
      }
      m.opsetImports.push(o);
    } else if (f === 14 && w === Wire.Bytes) {
      const s = r.sub();
      let k = '', v = '';
      while (!s.done()) { const [g, x] = s.tag(); if (g === 1) k = s.string(); else if (g === 2) v = s.string(); else s.skip(x); }
      m.metadata[k] = v;
    } else r.skip(w);
  }
  if (!m.graph) throw new Error('model has no graph');
  return m;
}

function decodeGraph(r: PbReader, ctx: DecodeCtx): Graph {
  const g: Graph = { name: '', nodes: [], inputs: [], outputs: [], initializers: new Map(), valueInfo: [] };
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 1: g.nodes.push(decodeNode(r.sub(), ctx)); break;
      case 2: g.name = r.string(); break;
      case 5: { const t = decodeTensor(r.sub(), ctx); g.initializers.set(t.name, t); break; }
      case 11: g.inputs.push(decodeValueInfo(r.sub())); break;
      case 12: g.outputs.push(decodeValueInfo(r.sub())); break;
      case 13: g.valueInfo.push(decodeValueInfo(r.sub())); break;
      default: r.skip(w);
    }
  }
  // ONNX IR < 4 lists initializers among inputs; keep inputs that are real feeds only
  g.inputs = g.inputs.filter((v) => !g.initializers.has(v.name));
  return g;
}

function decodeNode(r: PbReader, ctx: DecodeCtx): Node {
  const n: Node = { name: '', opType: '', domain: '', inputs: [], outputs: [], attrs: {} };
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 1: n.inputs.push(r.string()); break;
      case 2: n.outputs.push(r.string()); break;
      case 3: n.name = r.string(); break;
      case 4: n.opType = r.string(); break;
      case 5: { const [k, v] = decodeAttr(r.sub(), ctx); n.attrs[k] = v; break; }
      case 7: n.domain = r.string(); break;
      default: r.skip(w);
    }
  }
  if (n.domain === 'ai.onnx') n.domain = '';
  return n;
}

const ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_STRING = 3, ATTR_TENSOR = 4, ATTR_GRAPH = 5, ATTR_FLOATS = 6, ATTR_INTS = 7, ATTR_STRINGS = 8;

function decodeAttr(r: PbReader, ctx: DecodeCtx): [string, AttrValue] {
  let name = '', type = 0, fv = 0, iv = 0, sv: Uint8Array = new Uint8Array(0);
  let tv: Tensor | undefined, gv: Graph | undefined;
  const floats: number[] = [], ints: number[] = [], strings: string[] = [];
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 1: name = r.string(); break;
      case 2: fv = r.float(); break;
      case 3: iv = r.int(); break;
      case 4: sv = r.bytes(); break;
      case 5: tv = decodeTensor(r.sub(), ctx); break;
      case 6: gv = decodeGraph(r.sub(), ctx); break;
      case 7: r.repeated(w, (s) => s.float(), floats); break;
      case 8: r.repeated(w, (s) => s.int(), ints); break;
      case 9: strings.push(r.string()); break;
      case 20: type = r.int(); break;
      default: r.skip(w);
    }
  }
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  switch (type) {
    case ATTR_FLOAT: return [name, { type: 'float', value: fv }];
    case ATTR_INT: return [name, { type: 'int', value: iv }];
    case ATTR_STRING: return [name, { type: 'string', value: text(sv) }];
    case ATTR_TENSOR: return [name, { type: 'tensor', value: tv! }];
    case ATTR_GRAPH: return [name, { type: 'graph', value: gv! }];
    case ATTR_FLOATS: return [name, { type: 'floats', value: floats }];
    case ATTR_INTS: return [name, { type: 'ints', value: ints }];
    case ATTR_STRINGS: return [name, { type: 'strings', value: strings }];
    default: throw new Error(`attribute ${name} has unsupported type ${type}`);
  }
}

function decodeTensor(r: PbReader, ctx: DecodeCtx): Tensor {
  const dims: number[] = [];
  let dataType = 0, name = '', raw: Uint8Array | undefined, location = 0;
  const f32: number[] = [], i32: number[] = [], i64: bigint[] = [], f64: number[] = [], u64: bigint[] = [];
  const ext: Record<string, string> = {};
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 1: r.repeated(w, (s) => s.int(), dims); break;
      case 2: dataType = r.int(); break;
      case 4: r.repeated(w, (s) => s.float(), f32); break;
      case 5: r.repeated(w, (s) => s.int(), i32); break;
      case 7: r.repeated(w, (s) => s.varint64(), i64); break;
      case 8: name = r.string(); break;
      case 9: raw = r.bytes(); break;
      case 10: r.repeated(w, (s) => s.double(), f64); break;
      case 11: r.repeated(w, (s) => s.varint64(), u64); break;
      case 13: {
        const s = r.sub();
        let k = '', v = '';
        while (!s.done()) { const [g, x] = s.tag(); if (g === 1) k = s.string(); else if (g === 2) v = s.string(); else s.skip(x); }
        ext[k] = v;
        break;
      }
      case 14: location = r.int(); break;
      default: r.skip(w);
    }
  }
  const n = numel(dims);
  let data;
  if (location === 1) {
    if (!ext.location) throw new Error(`tensor ${name} says its data is external but names no file`);
    const len = ext.length !== undefined ? Number(ext.length) : n * elemBytes(dataType);
    data = dataFromBytes(dataType, ctx.readExternal(ext.location, Number(ext.offset ?? 0), len));
  } else if (raw) {
    data = dataFromBytes(dataType, raw);
  } else {
    data = allocData(dataType, n);
    // typed fields: float_data for FLOAT; int32_data also carries 8/16-bit types, bool and fp16 bits
    const src: ArrayLike<number | bigint> =
      dataType === DataType.FLOAT ? f32 : dataType === DataType.DOUBLE ? f64 :
      dataType === DataType.INT64 ? i64 : dataType === DataType.UINT64 || dataType === DataType.UINT32 ? u64 : i32;
    for (let i = 0; i < Math.min(n, src.length); i++) {
      if (data instanceof BigInt64Array || data instanceof BigUint64Array) (data as BigInt64Array)[i] = BigInt(src[i]);
      else (data as Float32Array)[i] = Number(src[i]);
    }
  }
  if (data.length !== n) throw new Error(`tensor ${name} has ${data.length} elements but its shape [${dims}] needs ${n}`);
  return { name, dataType, dims, data };
}

function decodeValueInfo(r: PbReader): ValueInfo {
  const v: ValueInfo = { name: '', elemType: 0, shape: null };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) v.name = r.string();
    else if (f === 2) {
      const t = r.sub();
      while (!t.done()) {
        const [g, x] = t.tag();
        if (g !== 1) { t.skip(x); continue; }
        const tt = t.sub(); // TypeProto.Tensor
        while (!tt.done()) {
          const [h, y] = tt.tag();
          if (h === 1) v.elemType = tt.int();
          else if (h === 2) {
            v.shape = [];
            const sh = tt.sub();
            while (!sh.done()) {
              const [k, z] = sh.tag();
              if (k !== 1) { sh.skip(z); continue; }
              const d = sh.sub();
              let dim: Dim = null;
              while (!d.done()) {
                const [q, u] = d.tag();
                if (q === 1) dim = d.int(); else if (q === 2) dim = d.string(); else d.skip(u);
              }
              v.shape.push(dim);
            }
          } else tt.skip(y);
        }
      }
    } else r.skip(w);
  }
  return v;
}

// ---------- encoding ----------

export interface EncodeOptions {
  /** Write tensors of at least this many bytes to `externalData.file` (relative to the model). */
  externalData?: { file: string; minBytes?: number; sink: (chunk: Uint8Array) => number };
}

/** Serializes a model to ONNX bytes. */
export function encodeModel(model: Model, opts: EncodeOptions = {}): Uint8Array {
  const w = new PbWriter();
  w.varintField(1, model.irVersion || 8);
  if (model.producerName) w.stringField(2, model.producerName);
  if (model.producerVersion) w.stringField(3, model.producerVersion);
  w.messageField(7, encodeGraph(model.graph, opts));
  for (const o of model.opsetImports) {
    const s = new PbWriter();
    if (o.domain) s.stringField(1, o.domain);
    s.varintField(2, o.version);
    w.messageField(8, s);
  }
  for (const [k, v] of Object.entries(model.metadata)) w.messageField(14, new PbWriter().stringField(1, k).stringField(2, v));
  return w.finish();
}

/** Options of {@link saveModel}. */
export interface SaveModelOptions {
  /** Write tensors of at least `minBytes` (default 1 KiB) to this file beside the model (e.g. model.onnx_data). */
  externalData?: string;
  minBytes?: number;
  /** false: refuse (code EEXIST) when the model or its data file exists. */
  replace?: boolean;
  /**
   * The folder is private scratch, read once and deleted (a session's temp folder): write in place, without the
   * fsyncs that would flush gigabytes nobody needs after a crash.
   */
  scratch?: boolean;
}

/**
 * Writes a model, atomically: the model and its external data go to temp files beside them and are renamed into
 * place (data first) once both are complete, so an error or a full disk leaves the old files as they were.
 */
export function saveModel(model: Model, file: string, options: SaveModelOptions = {}): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  if (options.scratch) return saveScratchModel(model, file, options);
  if (!options.externalData) return atomicWriteFileSync(file, encodeModel(model), options);
  const externalData = options.externalData;
  writeFilesAtomicallySync([path.join(dir, externalData), file], ([data, onnx]) => {
    onnx.write(encodeModel(model, { externalData: { file: externalData, minBytes: options.minBytes ?? 1024, sink: (chunk) => data.write(chunk) } }));
  }, options);
}

function saveScratchModel(model: Model, file: string, options: SaveModelOptions): void {
  if (!options.externalData) return fs.writeFileSync(file, encodeModel(model));
  const fd = fs.openSync(path.join(path.dirname(file), options.externalData), 'w');
  let offset = 0;
  try {
    const bytes = encodeModel(model, {
      externalData: {
        file: options.externalData,
        minBytes: options.minBytes ?? 1024,
        sink: (chunk) => { const at = offset; fs.writeFileSync(fd, chunk); offset += chunk.byteLength; return at; },
      },
    });
    fs.writeFileSync(file, bytes);
  } finally {
    fs.closeSync(fd);
  }
}

function encodeGraph(g: Graph, opts: EncodeOptions): PbWriter {
  const w = new PbWriter();
  for (const n of g.nodes) w.messageField(1, encodeNode(n, opts));
  w.stringField(2, g.name || 'graph');
  for (const t of g.initializers.values()) w.messageField(5, encodeTensor(t, opts));
  for (const v of g.inputs) w.messageField(11, encodeValueInfo(v));
  for (const v of g.outputs) w.messageField(12, encodeValueInfo(v));
  for (const v of g.valueInfo) w.messageField(13, encodeValueInfo(v));
  return w;
}

function encodeNode(n: Node, opts: EncodeOptions): PbWriter {
  const w = new PbWriter();
  for (const i of n.inputs) w.stringField(1, i);
  for (const o of n.outputs) w.stringField(2, o);
  if (n.name) w.stringField(3, n.name);
  w.stringField(4, n.opType);
  for (const [k, a] of Object.entries(n.attrs)) w.messageField(5, encodeAttr(k, a, opts));
  if (n.domain) w.stringField(7, n.domain);
  return w;
}

function encodeAttr(name: string, a: AttrValue, opts: EncodeOptions): PbWriter {
  const w = new PbWriter().stringField(1, name);
  switch (a.type) {
    case 'float': w.floatField(2, a.value).varintField(20, ATTR_FLOAT); break;
    case 'int': w.varintField(3, a.value).varintField(20, ATTR_INT); break;
    case 'string': w.stringField(4, a.value).varintField(20, ATTR_STRING); break;
    case 'tensor': w.messageField(5, encodeTensor(a.value, {})).varintField(20, ATTR_TENSOR); break;
    case 'graph': w.messageField(6, encodeGraph(a.value, opts)).varintField(20, ATTR_GRAPH); break;
    case 'floats': w.packedFloats(7, a.value).varintField(20, ATTR_FLOATS); break;
    case 'ints': w.packedVarints(8, a.value).varintField(20, ATTR_INTS); break;
    case 'strings': for (const s of a.value) w.stringField(9, s); w.varintField(20, ATTR_STRINGS); break;
    default: { const never: never = a; throw new Error(`unknown attribute ${(never as AttrValue).type}`); }
  }
  return w;
}

function encodeTensor(t: Tensor, opts: EncodeOptions): PbWriter {
  const w = new PbWriter();
  w.packedVarints(1, t.dims);
  w.varintField(2, t.dataType);
  if (t.name) w.stringField(8, t.name);
  const bytes = bytesOfData(t.data);
  const ext = opts.externalData;
  if (ext && bytes.byteLength >= (ext.minBytes ?? 1024)) {
    const offset = ext.sink(bytes);
    for (const [k, v] of [['location', ext.file], ['offset', String(offset)], ['length', String(bytes.byteLength)]]) {
      w.messageField(13, new PbWriter().stringField(1, k).stringField(2, v));
    }
    w.varintField(14, 1);
  } else {
    w.bytesField(9, bytes);
  }
  return w;
}

function encodeValueInfo(v: ValueInfo): PbWriter {
  const tt = new PbWriter().varintField(1, v.elemType);
  if (v.shape) {
    const sh = new PbWriter();
    for (const d of v.shape) {
      const dw = new PbWriter();
      if (typeof d === 'number') dw.varintField(1, d);
      else if (typeof d === 'string') dw.stringField(2, d);
      sh.messageField(1, dw);
    }
    tt.messageField(2, sh);
  }
  return new PbWriter().stringField(1, v.name).messageField(2, new PbWriter().messageField(1, tt));
}
