/**
 * PyTorch checkpoints (.pth/.pt written by `torch.save` since PyTorch 1.6) read as tensors and nothing else.
 * Some published weights exist only in this format (the LAION aesthetic predictor's head is a .pth), and Python's
 * own unpickler runs whatever code a pickle names. So this is an unpickler of its own: it knows only the opcodes a
 * state dict needs and only the globals PyTorch's `weights_only=True` loader allows for tensors and state dicts
 * (OrderedDict, the tensor rebuild functions, storage types, dtypes). Any other opcode or global stops the read
 * where it appears, with an error naming it; no name in the file is ever looked up or called, so nothing can run.
 *
 * The archive: `<archive>/data.pkl` (the pickle; each storage is a persistent id
 * ('storage', <storage type>, key, location, numel)), `<archive>/data/<key>` (a storage's raw bytes),
 * `<archive>/byteorder` ("little"; absent in older files, which are little-endian).
 */
import * as fs from 'node:fs';
import { DTYPE_BYTES, allocTensorData, readSafetensorsWithMetadata, type SafeDtype, type SafeTensor } from './safetensors';
import { listZip, readZipEntry, type ZipEntry } from './zip';

const TO_SAFETENSORS = 'to safetensors where you trust it (in Python: safetensors.torch.save_file(state_dict, "model.safetensors")) and load that file instead';
const CONVERT = `Convert it ${TO_SAFETENSORS}.`;

/** An error for something a weights-only checkpoint may not hold, said before any of it had an effect. */
const refusal = (where: string, what: string) => new Error(`${where}: ${what}; nothing in the file was run. ${CONVERT}`);

/** The values the unpickler builds: Python's None, bool, int, float, str, list, tuple and dict, and the allowlisted objects. */
type Py = null | boolean | number | bigint | string | PyList | PyTuple | PyDict | PyGlobal | PyStorage | PyTensor;
interface PyList { kind: 'list'; items: Py[] }
interface PyTuple { kind: 'tuple'; items: Py[] }
interface PyDict { kind: 'dict'; items: Map<string, Py>; ordered: boolean }
/** An allowlisted global, kept as its name: never resolved to anything that runs. */
interface PyGlobal { kind: 'global'; name: string }
interface PyStorage { kind: 'storage'; key: string; dtype: SafeDtype; bytes: Uint8Array }
interface PyTensor { kind: 'tensor'; tensor: SafeTensor }

/** What the opcodes that reach outside plain data (GLOBAL, REDUCE, BUILD, BINPERSID) are allowed to do. */
interface PickleHooks {
  global(name: string): Py;
  reduce(fn: Py, args: Py): Py;
  build(inst: Py, state: Py): void;
  persistentLoad(pid: Py): Py;
}

type PyObject = Exclude<Py, null | boolean | number | bigint | string>;
const is = <K extends PyObject['kind']>(v: Py | undefined, kind: K): v is Extract<PyObject, { kind: K }> => v !== null && typeof v === 'object' && v.kind === kind;
const describe = (v: Py | undefined): string => (v === undefined ? 'nothing' : v === null ? 'None' : typeof v === 'object' ? (v.kind === 'global' ? v.name : v.kind) : typeof v);
const utf8 = new TextDecoder('utf-8');

class Unpickler {
  private pos = 0;
  private opAt = 0;
  private stack: Py[] = [];
  private readonly marks: Py[][] = [];
  private readonly memo = new Map<number, Py>();

  constructor(private readonly buf: Uint8Array, private readonly where: string, readonly hooks: PickleHooks) {}

  /** Runs the pickle to its STOP and returns the object it built. */
  run(): Py {
    for (;;) {
      this.opAt = this.pos;
      const op = this.u8();
      if (op === STOP) return this.pop();
      const rule = RULES.get(op);
      if (!rule) {
        const name = REFUSED[op] ? `${REFUSED[op]} (0x${op.toString(16)})` : `0x${op.toString(16)}, which is no pickle opcode`;
        throw refusal(this.where, `pickle opcode ${name} at byte ${this.opAt} is not allowed: a weights-only checkpoint holds tensors and state dicts, nothing else`);
      }
      rule(this);
    }
  }

  refuse(what: string): Error { return refusal(this.where, `${what} at byte ${this.opAt}`); }
  corrupt(what: string): Error { return new Error(`${this.where}: its pickle (data.pkl) is corrupt (${what} at byte ${this.opAt}); download the file again`); }

  bytes(n: number): Uint8Array {
    if (n > this.buf.length - this.pos) throw this.corrupt('it ends inside an opcode');
    return this.buf.subarray(this.pos, (this.pos += n));
  }
  private view(n: number): DataView { const b = this.bytes(n); return new DataView(b.buffer, b.byteOffset, n); }
  u8(): number { return this.bytes(1)[0]; }
  u16(): number { return this.view(2).getUint16(0, true); }
  u32(): number { return this.view(4).getUint32(0, true); }
  i32(): number { return this.view(4).getInt32(0, true); }
  u64(): number {
    const v = this.view(8).getBigUint64(0, true);
    if (v > BigInt(this.buf.length)) throw this.corrupt('a length past the end');
    return Number(v);
  }
  f64(): number { return this.view(8).getFloat64(0, false); }
  /** A little-endian two's-complement integer of `n` bytes (LONG1), as a number when it fits exactly. */
  long(n: number): number | bigint {
    const b = this.bytes(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (n && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  utf8(n: number): string { return utf8.decode(this.bytes(n)); }
  line(): string {
    const end = this.buf.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 256) throw this.corrupt('a GLOBAL without its name');
    return this.utf8(end - this.pos + 1).slice(0, -1);
  }

  push(v: Py): void { this.stack.push(v); }
  pop(): Py {
    if (!this.stack.length) throw this.corrupt('the stack runs empty');
    return this.stack.pop()!;
  }
  top(): Py {
    if (!this.stack.length) throw this.corrupt('the stack runs empty');
    return this.stack[this.stack.length - 1];
  }
  replaceTop(v: Py): void { this.pop(); this.push(v); }
  mark(): void { this.marks.push(this.stack); this.stack = []; }
  popMark(): Py[] {
    const items = this.stack, below = this.marks.pop();
    if (!below) throw this.corrupt('no MARK to end');
    this.stack = below;
    return items;
  }
  popN(n: number): Py[] {
    if (this.stack.length < n) throw this.corrupt('the stack runs empty');
    return this.stack.splice(this.stack.length - n, n);
  }
  put(i: number): void { this.memo.set(i, this.top()); }
  putNext(): void { this.put(this.memo.size); }
  get(i: number): void {
    if (!this.memo.has(i)) throw this.corrupt(`memo ${i} was never stored`);
    this.push(this.memo.get(i)!);
  }

  /** The dict on top of the stack, for SETITEM(S). */
  targetDict(op: string): PyDict {
    const d = this.top();
    if (!is(d, 'dict')) throw this.refuse(`pickle opcode ${op} sets an item on a ${describe(d)} (only dicts may be filled)`);
    return d;
  }
  targetList(op: string): PyList {
    const l = this.top();
    if (!is(l, 'list')) throw this.refuse(`pickle opcode ${op} appends to a ${describe(l)} (only lists may be appended to)`);
    return l;
  }
  setItems(d: PyDict, kv: Py[]): void {
    if (kv.length % 2) throw this.corrupt('a key without its value');
    for (let i = 0; i + 1 < kv.length; i += 2) d.items.set(this.dictKey(kv[i]), kv[i + 1]);
  }
  private dictKey(k: Py): string {
    if (typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return String(k);
    throw this.refuse(`a dict key of type ${describe(k)} (state dict keys are names)`);
  }
}

const STOP = 0x2e;
const tuple = (items: Py[]): PyTuple => ({ kind: 'tuple', items });

// One rule per opcode a state dict needs (protocol 2, and 4's framing and short strings); any other is refused.
const RULES = new Map<number, (m: Unpickler) => void>([
  [0x80, (m) => { const v = m.u8(); if (v < 2 || v > 5) throw m.refuse(`pickle protocol ${v} (torch.save writes 2)`); }], // PROTO
  [0x95, (m) => void m.u64()], // FRAME: a length hint for buffered readers
  [0x7d, (m) => m.push({ kind: 'dict', items: new Map(), ordered: false })], // EMPTY_DICT
  [0x5d, (m) => m.push({ kind: 'list', items: [] })], // EMPTY_LIST
  [0x29, (m) => m.push(tuple([]))], // EMPTY_TUPLE
  [0x28, (m) => m.mark()], // MARK
  [0x58, (m) => m.push(m.utf8(m.u32()))], // BINUNICODE
  [0x8c, (m) => m.push(m.utf8(m.u8()))], // SHORT_BINUNICODE
  [0x8d, (m) => m.push(m.utf8(m.u64()))], // BINUNICODE8
  [0x4a, (m) => m.push(m.i32())], // BININT
  [0x4b, (m) => m.push(m.u8())], // BININT1
  [0x4d, (m) => m.push(m.u16())], // BININT2
  [0x8a, (m) => m.push(m.long(m.u8()))], // LONG1
  [0x47, (m) => m.push(m.f64())], // BINFLOAT (big-endian)
  [0x88, (m) => m.push(true)], // NEWTRUE
  [0x89, (m) => m.push(false)], // NEWFALSE
  [0x4e, (m) => m.push(null)], // NONE
  [0x74, (m) => m.push(tuple(m.popMark()))], // TUPLE
  [0x85, (m) => m.push(tuple(m.popN(1)))], // TUPLE1
  [0x86, (m) => m.push(tuple(m.popN(2)))], // TUPLE2
  [0x87, (m) => m.push(tuple(m.popN(3)))], // TUPLE3
  [0x73, (m) => { const kv = m.popN(2); m.setItems(m.targetDict('SETITEM'), kv); }], // SETITEM
  [0x75, (m) => { const kv = m.popMark(); m.setItems(m.targetDict('SETITEMS'), kv); }], // SETITEMS
  [0x61, (m) => { const v = m.pop(); m.targetList('APPEND').items.push(v); }], // APPEND
  [0x65, (m) => { const vs = m.popMark(); m.targetList('APPENDS').items.push(...vs); }], // APPENDS
  [0x71, (m) => m.put(m.u8())], // BINPUT
  [0x72, (m) => m.put(m.u32())], // LONG_BINPUT
  [0x94, (m) => m.putNext()], // MEMOIZE
  [0x68, (m) => m.get(m.u8())], // BINGET
  [0x6a, (m) => m.get(m.u32())], // LONG_BINGET
  [0x63, (m) => { const mod = m.line(); m.push(m.hooks.global(`${mod}.${m.line()}`)); }], // GLOBAL
  [0x93, (m) => { // STACK_GLOBAL
    const [mod, name] = m.popN(2);
    if (typeof mod !== 'string' || typeof name !== 'string') throw m.corrupt('a STACK_GLOBAL without a module and name');
    m.push(m.hooks.global(`${mod}.${name}`));
  }],
  [0x52, (m) => { const args = m.pop(); m.replaceTop(m.hooks.reduce(m.top(), args)); }], // REDUCE: fn(*args)
  [0x62, (m) => { const state = m.pop(); m.hooks.build(m.top(), state); }], // BUILD: inst.__setstate__(state)
  [0x51, (m) => m.push(m.hooks.persistentLoad(m.pop()))], // BINPERSID
]);

// Names of the pickle opcodes refused, for the error.
const REFUSED: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x50: 'PERSID', 0x49: 'INT', 0x4c: 'LONG', 0x8b: 'LONG4', 0x53: 'STRING', 0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x46: 'FLOAT', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES',
  0x8e: 'BINBYTES8', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER', 0x64: 'DICT', 0x6c: 'LIST',
  0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x67: 'GET', 0x70: 'PUT', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
};

/** Storage types torch.save names in a storage's persistent id, and the dtype of their elements. */
const STORAGE_DTYPES: Record<string, SafeDtype> = {
  'torch.FloatStorage': 'F32', 'torch.HalfStorage': 'F16', 'torch.BFloat16Storage': 'BF16', 'torch.DoubleStorage': 'F64',
  'torch.LongStorage': 'I64', 'torch.IntStorage': 'I32', 'torch.ShortStorage': 'I16', 'torch.CharStorage': 'I8',
  'torch.ByteStorage': 'U8', 'torch.BoolStorage': 'BOOL', 'torch.UntypedStorage': 'U8', 'torch.storage.UntypedStorage': 'U8',
};
const DTYPE_GLOBALS = ['float32', 'float', 'float16', 'half', 'bfloat16', 'float64', 'double', 'int64', 'long', 'int32', 'int', 'int16', 'short', 'int8', 'uint8', 'bool'].map((t) => `torch.${t}`);
const CALLABLES = ['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter'];
const ALLOWED_GLOBALS = new Set([...CALLABLES, ...Object.keys(STORAGE_DTYPES), ...DTYPE_GLOBALS]);

/** Reads the bytes of storage `key` (elements of `dtype`, `numel` of them) out of the archive. */
type StorageReader = (key: string, dtype: SafeDtype, numel: number) => Uint8Array;

// The allowlist: what torch's weights_only unpickler lets a tensor or state dict use, and only that.
function torchHooks(where: string, readStorage: StorageReader): PickleHooks {
  const storages = new Map<string, PyStorage>();
  const refuse = (what: string) => refusal(where, what);
  return {
    global(name) {
      if (!ALLOWED_GLOBALS.has(name)) throw refuse(`the pickle names the global ${name}, which a weights-only checkpoint may not use (only OrderedDict, tensor rebuild functions, storage types and dtypes are allowed)`);
      return { kind: 'global', name };
    },
    reduce(fn, args) {
      const name = describe(fn);
      const a = is(args, 'tuple') ? args.items : undefined;
      if (!a) throw refuse(`REDUCE calls ${name} with a ${describe(args)} instead of an argument tuple`);
      if (name === 'collections.OrderedDict' && a.length === 0) return { kind: 'dict', items: new Map(), ordered: true };
      if (name === 'torch._utils._rebuild_tensor_v2') return { kind: 'tensor', tensor: rebuildTensor(where, a) };
      if (name === 'torch._utils._rebuild_parameter' && a.length === 3 && is(a[0], 'tensor')) return a[0];
      throw refuse(`REDUCE calls ${name}${a.length ? ' with arguments' : ''}, which a weights-only checkpoint may not call`);
    },
    build(inst, state) {
      // An OrderedDict's state is its attributes (a state dict's `_metadata`): nothing a tensor needs.
      if (!is(inst, 'dict') || !inst.ordered || !(state === null || is(state, 'dict'))) throw refuse(`BUILD sets the state of a ${describe(inst)}; only an OrderedDict's attributes may be set`);
    },
    persistentLoad(pid) {
      const items = is(pid, 'tuple') ? pid.items : [];
      const [tag, type, key, location, numel] = items;
      const dtype = is(type, 'global') ? STORAGE_DTYPES[type.name] : undefined;
      if (items.length !== 5 || tag !== 'storage' || !dtype || typeof key !== 'string' || typeof location !== 'string' || !isIndex(numel)) {
        throw refuse(`BINPERSID loads a ${tag === 'storage' ? `storage of type ${describe(type)}` : describe(pid)}, not ('storage', <storage type>, key, location, numel)`);
      }
      let s = storages.get(key);
      if (s && s.dtype !== dtype) throw new Error(`${where}: storage ${key} is used as ${s.dtype} and as ${dtype}; the file is corrupt`);
      if (!s) storages.set(key, (s = { kind: 'storage', key, dtype, bytes: readStorage(key, dtype, numel) }));
      return s;
    },
  };
}

const isIndex = (v: Py | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])` as a contiguous tensor. */
function rebuildTensor(where: string, a: Py[]): SafeTensor {
  const [storage, offset, size, stride, , hooks, metadata] = a;
  const indices = (v: Py | undefined): number[] | undefined => (is(v, 'tuple') && v.items.every(isIndex) ? (v.items as number[]) : undefined);
  const shape = indices(size), strides = indices(stride);
  const emptyDict = (v: Py | undefined) => v === undefined || v === null || (is(v, 'dict') && v.items.size === 0);
  if (a.length < 6 || a.length > 7 || !is(storage, 'storage') || !isIndex(offset) || !shape || !strides || shape.length !== strides.length) {
    throw refusal(where, 'a tensor is rebuilt from arguments torch.save does not write (storage, offset, size, stride, requires_grad, hooks)');
  }
  if (!emptyDict(hooks) || !emptyDict(metadata)) throw refusal(where, 'a tensor carries backward hooks or metadata, which a state dict does not hold');
  return materialise(where, storage, offset, shape, strides);
}

/** The elements a strided view of `s` sees, copied out in row-major order (non-contiguous views included). */
function materialise(where: string, s: PyStorage, offset: number, shape: number[], stride: number[]): SafeTensor {
  const e = DTYPE_BYTES[s.dtype];
  const numel = shape.reduce((x, y) => x * y, 1);
  // Views that repeat elements (stride 0, as `expand` makes) would let a small file ask for any amount of memory.
  if (numel * e > s.bytes.length) throw new Error(`${where}: a tensor of shape [${shape}] has more elements than its storage ${s.key}: save it with .contiguous(). ${CONVERT}`);
  const data = allocTensorData(s.dtype, numel);
  const out = new Uint8Array(data.buffer);
  if (numel === 0) return { dtype: s.dtype, shape, data };
  const last = offset + shape.reduce((acc, n, d) => acc + (n - 1) * stride[d], 0);
  if ((last + 1) * e > s.bytes.length) throw new Error(`${where}: a tensor of shape [${shape}] reads past the end of storage ${s.key}; the file is corrupt or truncated`);
  let contiguous = true;
  for (let d = shape.length - 1, want = 1; d >= 0; want *= shape[d], d--) if (shape[d] !== 1 && stride[d] !== want) contiguous = false;
  if (contiguous) {
    out.set(s.bytes.subarray(offset * e, (offset + numel) * e));
    return { dtype: s.dtype, shape, data };
  }
  const idx = new Array<number>(shape.length).fill(0);
  for (let j = 0, src = offset; j < numel; j++) {
    for (let b = 0; b < e; b++) out[j * e + b] = s.bytes[src * e + b];
    for (let d = shape.length - 1; d >= 0; d--) {
      src += stride[d];
      if (++idx[d] < shape[d]) break;
      src -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return { dtype: s.dtype, shape, data };
}

/** The tensors of a loaded object, keyed by their dotted path through nested dicts; other values are left out. */
function stateDictTensors(where: string, root: Py): Map<string, SafeTensor> {
  if (!is(root, 'dict')) throw new Error(`${where} holds a ${describe(root)}, not a state dict (a dict of tensors): save model.state_dict() instead. ${CONVERT}`);
  const out = new Map<string, SafeTensor>();
  const seen = new Set<PyDict>();
  const walk = (d: PyDict, prefix: string) => {
    if (seen.has(d)) return; // a memo reference back to an enclosing dict
    seen.add(d);
    for (const [k, v] of d.items) {
      const name = prefix + k;
      if (is(v, 'tensor')) {
        if (out.has(name)) throw new Error(`${where}: two tensors are named ${name}`);
        out.set(name, v.tensor);
      } else if (is(v, 'dict')) walk(v, `${name}.`);
    }
  };
  walk(root, '');
  if (!out.size) throw new Error(`${where} holds no tensors; is it a PyTorch state dict?`);
  return out;
}

/** The entries of the checkpoint's ZIP, or an error that says what the file is instead. */
function openArchive(file: string): ZipEntry[] {
  const head = Buffer.alloc(512);
  let got: number;
  try {
    const fd = fs.openSync(file, 'r');
    try { got = fs.readSync(fd, head, 0, head.length, 0); } finally { fs.closeSync(fd); }
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (got >= 4 && head.readUInt32LE(0) === 0x04034b50) {
    try {
      return listZip(file);
    } catch (e) {
      throw new Error(`${file} is a damaged PyTorch checkpoint (${(e as Error).message}); download it again`);
    }
  }
  const legacy = `${file} was saved by PyTorch before 1.6, in the legacy format this reader does not take: re-save it with a newer PyTorch (torch.save(torch.load(f, weights_only=True), f)) or convert it ${TO_SAFETENSORS}.`;
  if (got >= 4 && head[0] === 0x80 && head[1] === 0x02 && head[2] === 0x8a && head[3] === 0x0a) throw new Error(legacy);
  if (got >= 262 && head.toString('latin1', 257, 262) === 'ustar') throw new Error(legacy);
  throw new Error(`${file} is not a PyTorch checkpoint (torch.save writes a ZIP archive; this file is not one, or it is truncated)`);
}

/** Reads a `torch.save` checkpoint (.pth/.pt) into named tensors, refusing anything but tensors and state dicts. */
export function readTorchCheckpoint(file: string): Map<string, SafeTensor> {
  const entries = openArchive(file);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const prefix = entries.length ? entries[0].name.slice(0, entries[0].name.indexOf('/') + 1) : '';
  const entry = (name: string): ZipEntry | undefined => (prefix ? byName.get(prefix + name) : undefined);
  if (entry('constants.pkl') || entries.some((e) => e.name.startsWith(`${prefix}code/`))) {
    throw new Error(`${file} is a TorchScript module (torch.jit.save), not a state dict: save the module's state_dict() with torch.save. ${CONVERT}`);
  }
  const pkl = entry('data.pkl');
  if (!pkl) throw new Error(`${file} is a ZIP archive without <archive>/data.pkl, so not a torch.save checkpoint. ${CONVERT}`);
  const order = entry('byteorder');
  const endian = order ? bytesOf(file, order).toString('latin1') : 'little';
  if (endian !== 'little') throw new Error(`${file} was saved on a ${endian}-endian machine; only little-endian checkpoints are read: re-save it on a little-endian machine. ${CONVERT}`);
  const readStorage: StorageReader = (key, dtype, numel) => {
    const s = entry(`data/${key}`);
    if (!s) throw new Error(`${file} has no data/${key} for a storage its pickle names; the file is corrupt or truncated`);
    const bytes = bytesOf(file, s);
    if (bytes.length !== numel * DTYPE_BYTES[dtype]) throw new Error(`${file}: storage data/${key} holds ${bytes.length} bytes, not the ${numel} ${dtype} elements its pickle names; the file is corrupt`);
    return bytes;
  };
  return stateDictTensors(file, new Unpickler(bytesOf(file, pkl), file, torchHooks(file, readStorage)).run());
}

// One entry's bytes, checked against the size the directory gives.
function bytesOf(file: string, e: ZipEntry): Buffer {
  let b: Buffer;
  try {
    b = readZipEntry(file, e);
  } catch (err) {
    throw new Error(`${file}: cannot read ${e.name} (${(err as Error).message}); the file is damaged or truncated: download it again`);
  }
  if (b.length !== e.size) throw new Error(`${file}: ${e.name} holds ${b.length} bytes, not ${e.size}; the file is damaged or truncated: download it again`);
  return b;
}

/** True for the names of PyTorch checkpoints (.pth, .pt), the files {@link readWeightsFile} reads with {@link readTorchCheckpoint}. */
export const isTorchCheckpointPath = (file: string): boolean => /\.(pth|pt)$/i.test(file);

/** Weights by path: .pth/.pt through the tensor-only PyTorch reader (no metadata), anything else as safetensors. */
export function readWeightsFile(file: string): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  return isTorchCheckpointPath(file) ? { tensors: readTorchCheckpoint(file), metadata: {} } : readSafetensorsWithMetadata(file);
}
