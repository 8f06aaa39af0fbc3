/**
 * Test-only writer of PyTorch checkpoints as `torch.save` lays them out: a protocol-2 pickle that memoizes the way
 * CPython's pickler does (every string, tuple, dict and global gets a BINPUT; an object seen again is a BINGET), with
 * tensors reduced to `torch._utils._rebuild_tensor_v2` and storages as persistent ids, inside a ZIP of stored
 * (or deflated) entries aligned to 64 bytes.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { crc32 } from '../../../src/core/image/png';
import type { SafeDtype, SafeTensor } from '../../../src/core/safetensors';

/** Pickle opcodes the tests write. */
export const OP = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28, EMPTY_TUPLE: 0x29, EMPTY_DICT: 0x7d, EMPTY_LIST: 0x5d, TUPLE: 0x74, TUPLE1: 0x85,
  TUPLE2: 0x86, TUPLE3: 0x87, BINUNICODE: 0x58, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BININT: 0x4a, BININT1: 0x4b,
  BININT2: 0x4d, LONG1: 0x8a, BINFLOAT: 0x47, NEWTRUE: 0x88, NEWFALSE: 0x89, NONE: 0x4e, SETITEM: 0x73, SETITEMS: 0x75,
  APPEND: 0x61, APPENDS: 0x65, BINPUT: 0x71, LONG_BINPUT: 0x72, BINGET: 0x68, LONG_BINGET: 0x6a, MEMOIZE: 0x94,
  FRAME: 0x95, GLOBAL: 0x63, STACK_GLOBAL: 0x93, REDUCE: 0x52, BUILD: 0x62, BINPERSID: 0x51,
} as const;

/** A pickle written opcode by opcode, memoizing like CPython's pickler. */
export class Pickle {
  private readonly out: number[] = [];
  private readonly memo = new Map<string, number>();
  private next = 0;

  op(code: number, ...payload: (number[] | Uint8Array)[]): this {
    this.out.push(code);
    for (const p of payload) this.out.push(...p);
    return this;
  }
  proto(v = 2): this { return this.op(OP.PROTO, [v]); }
  stop(): this { return this.op(OP.STOP); }
  /** BINPUT the object just written; `id` names it for a later {@link got}. */
  put(id?: string): this {
    const i = this.next++;
    if (id !== undefined) this.memo.set(id, i);
    return i < 256 ? this.op(OP.BINPUT, [i]) : this.op(OP.LONG_BINPUT, u32(i));
  }
  /** Writes a BINGET when `id` was memoized before, as CPython does for an object it has already saved. */
  got(id: string): boolean {
    const i = this.memo.get(id);
    if (i === undefined) return false;
    this.op(i < 256 ? OP.BINGET : OP.LONG_BINGET, i < 256 ? [i] : u32(i));
    return true;
  }
  /** A str; `id` marks the same Python object saved again (an interned constant, a storage's key). */
  str(s: string, id?: string): this {
    if (id !== undefined && this.got(`s:${id}`)) return this;
    const b = Buffer.from(s, 'utf8');
    return this.op(OP.BINUNICODE, u32(b.length), b).put(id === undefined ? undefined : `s:${id}`);
  }
  global(module: string, name: string): this {
    if (this.got(`g:${module}.${name}`)) return this;
    return this.op(OP.GLOBAL, Buffer.from(`${module}\n${name}\n`, 'latin1')).put(`g:${module}.${name}`);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(OP.BININT1, [n]);
    if (n >= 0 && n < 65536) return this.op(OP.BININT2, [n & 0xff, n >> 8]);
    if (n >= -(2 ** 31) && n < 2 ** 31) { const b = Buffer.alloc(4); b.writeInt32LE(n); return this.op(OP.BININT, b); }
    const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(n));
    return this.op(OP.LONG1, [8], b);
  }
  bool(b: boolean): this { return this.op(b ? OP.NEWTRUE : OP.NEWFALSE); }
  /** A tuple of the items each callback writes: TUPLE1-3 or MARK..TUPLE, then memoized. */
  tuple(items: (() => void)[]): this {
    if (!items.length) return this.op(OP.EMPTY_TUPLE);
    if (items.length > 3) this.op(OP.MARK);
    items.forEach((f) => f());
    return this.op(items.length > 3 ? OP.TUPLE : [OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][items.length - 1]).put();
  }
  ints(xs: number[]): this { return this.tuple(xs.map((x) => () => this.int(x))); }
  /** `collections.OrderedDict()` as Python reduces it. */
  orderedDict(): this { return this.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE).op(OP.REDUCE).put(); }
  /** Dict items: one SETITEM, or MARK..SETITEMS for more. */
  items(entries: [string, () => void][]): this {
    if (entries.length > 1) this.op(OP.MARK);
    for (const [k, v] of entries) { this.str(k); v(); }
    return entries.length ? this.op(entries.length > 1 ? OP.SETITEMS : OP.SETITEM) : this;
  }
  bytes(): Buffer { return Buffer.from(this.out); }
}

const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };

/** One storage: its key in the archive and its elements. */
export interface StorageSpec { key: string; dtype: SafeDtype; data: SafeTensor['data'] }
/** A tensor as a view of a storage (contiguous row-major when `stride` is left out). */
export interface TensorSpec { storage: StorageSpec; shape: number[]; stride?: number[]; offset?: number }

const STORAGE_TYPE: Record<SafeDtype, string> = {
  F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage', F64: 'DoubleStorage', I64: 'LongStorage',
  I32: 'IntStorage', I16: 'ShortStorage', I8: 'CharStorage', U8: 'ByteStorage', BOOL: 'BoolStorage',
};

/** Row-major strides of `shape`. */
export const contiguousStrides = (shape: number[]) => shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));

/** Writes a tensor as Tensor.__reduce_ex__ gives it: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()). */
export function writeTensor(p: Pickle, t: TensorSpec): void {
  p.global('torch._utils', '_rebuild_tensor_v2');
  p.tuple([
    () => {
      p.tuple([() => p.str('storage', 'storage'), () => p.global('torch', STORAGE_TYPE[t.storage.dtype]), () => p.str(t.storage.key, `key:${t.storage.key}`), () => p.str('cpu', 'cpu'), () => p.int(t.storage.data.length)]);
      p.op(OP.BINPERSID);
    },
    () => p.int(t.offset ?? 0),
    () => p.ints(t.shape),
    () => p.ints(t.stride ?? contiguousStrides(t.shape)),
    () => p.bool(false),
    () => p.orderedDict(),
  ]);
  p.op(OP.REDUCE).put();
}

/** The data.pkl of `torch.save(module.state_dict())`: an OrderedDict of tensors whose `_metadata` attribute BUILD sets. */
export function stateDictPickle(tensors: Record<string, TensorSpec>): Buffer {
  const p = new Pickle().proto();
  p.orderedDict();
  p.items(Object.entries(tensors).map(([k, t]) => [k, () => writeTensor(p, t)]));
  p.op(OP.EMPTY_DICT).put();
  p.str('_metadata').orderedDict().str('').op(OP.EMPTY_DICT).put().str('version').int(1).op(OP.SETITEM).op(OP.SETITEM).op(OP.SETITEM);
  return p.op(OP.BUILD).stop().bytes();
}

/** Options for the archive: its folder name, deflated entries, the byteorder record (null: none, as in older files). */
export interface ArchiveOptions { archive?: string; deflate?: boolean; byteorder?: string | null }

/** The records of torch.save's archive, in its order: data.pkl, format records, byteorder, data/<key>, version. */
export function torchArchive(pkl: Uint8Array, storages: StorageSpec[], o: ArchiveOptions = {}): Buffer {
  const dir = o.archive ?? 'archive';
  const records: [string, Uint8Array][] = [[`${dir}/data.pkl`, pkl], [`${dir}/.format_version`, Buffer.from('1')], [`${dir}/.storage_alignment`, Buffer.from('64')]];
  if (o.byteorder !== null) records.push([`${dir}/byteorder`, Buffer.from(o.byteorder ?? 'little')]);
  for (const s of storages) records.push([`${dir}/data/${s.key}`, new Uint8Array(s.data.buffer, s.data.byteOffset, s.data.byteLength)]);
  records.push([`${dir}/version`, Buffer.from('3\n')], [`${dir}/.data/serialization_id`, Buffer.from('1234567890')]);
  return zipArchive(records, o.deflate);
}

/** Writes `tensors` to `file` as torch.save would (each storage once, however many tensors view it). */
export function writeTorchFile(file: string, tensors: Record<string, TensorSpec>, o: ArchiveOptions = {}): void {
  const storages = [...new Map(Object.values(tensors).map((t) => [t.storage.key, t.storage])).values()];
  fs.writeFileSync(file, torchArchive(stateDictPickle(tensors), storages, o));
}

/** A ZIP of `records`; stored entries padded (torch's "FB" extra field) so each one's data starts 64-byte aligned. */
export function zipArchive(records: [string, Uint8Array][], deflate = false): Buffer {
  const locals: Buffer[] = [], central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of records) {
    const body = deflate ? zlib.deflateRawSync(data) : Buffer.from(data);
    const n = Buffer.from(name);
    const pad = deflate ? 0 : (64 - ((offset + 30 + n.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(pad ? pad + 4 : 0);
    if (pad) { extra.write('FB', 0, 'latin1'); extra.writeUInt16LE(pad, 2); }
    const crc = crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt16LE(deflate ? 8 : 0, 8); lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.length, 18); lh.writeUInt32LE(data.length, 22); lh.writeUInt16LE(n.length, 26); lh.writeUInt16LE(extra.length, 28);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6); ch.writeUInt16LE(deflate ? 8 : 0, 10); ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(body.length, 20); ch.writeUInt32LE(data.length, 24); ch.writeUInt16LE(n.length, 28); ch.writeUInt32LE(offset, 42);
    locals.push(lh, n, extra, body);
    central.push(ch, n);
    offset += 30 + n.length + extra.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(records.length, 8); end.writeUInt16LE(records.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
