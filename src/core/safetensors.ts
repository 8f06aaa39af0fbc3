/** safetensors read/write: the weight format we load (PyTorch checkpoints only through torchLoad's tensor-only reader). */
import * as fs from 'node:fs';
import { atomicWriteFileSync, type AtomicWriteOptions } from './fsutil';

export type SafeDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  /** F16/BF16 are kept as raw Uint16 bits; use `toFloat32` to widen. */
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;
}

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Record<SafeDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** A zeroed data array for `n` elements of `dtype` (F16/BF16 as Uint16 bits, BOOL as bytes). */
export function allocTensorData(dtype: SafeDtype, n: number): SafeTensor['data'] {
  switch (dtype) {
    case 'F32': return new Float32Array(n);
    case 'F64': return new Float64Array(n);
    case 'I64': return new BigInt64Array(n);
    case 'I32': return new Int32Array(n);
    case 'I16': return new Int16Array(n);
    case 'I8': return new Int8Array(n);
    case 'F16': case 'BF16': return new Uint16Array(n);
    case 'U8': case 'BOOL': return new Uint8Array(n);
  }
}

/** Parses a safetensors file or buffer; `__metadata__` comes back separately. */
export function readSafetensorsWithMetadata(src: string | Uint8Array): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const where = typeof src === 'string' ? src : 'safetensors buffer';
  let buf: Uint8Array;
  try {
    buf = typeof src === 'string' ? fs.readFileSync(src) : src;
  } catch (e) {
    throw new Error(`cannot read ${where}: ${(e as Error).message}`);
  }
  if (buf.byteLength < 8) throw new Error(`${where} is not a safetensors file (too short)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(dv.getBigUint64(0, true));
  if (headerLen > buf.byteLength - 8 || headerLen > 100_000_000) throw new Error(`${where} is not a safetensors file (bad header length); only .safetensors weights are accepted`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLen)));
  } catch {
    throw new Error(`${where} has a corrupt safetensors header`);
  }
  if (!isRecord(header)) throw new Error(`${where} has a corrupt safetensors header (not a JSON object)`);
  const base = 8 + headerLen;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') { metadata = checkedMetadata(v, where); continue; }
    const e = checkedEntry(v, name, where);
    const [a, b] = e.data_offsets;
    const n = e.shape.reduce((x, y) => x * y, 1);
    if (b - a !== n * DTYPE_BYTES[e.dtype] || base + b > buf.byteLength) throw new Error(`${where}: tensor ${name} is truncated or its offsets are wrong`);
    const data = allocTensorData(e.dtype, n);
    new Uint8Array(data.buffer).set(buf.subarray(base + a, base + b));
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

// A header entry is whatever the file says: each field is checked before it sizes or locates anything.
function checkedEntry(v: unknown, name: string, where: string): { dtype: SafeDtype; shape: number[]; data_offsets: [number, number] } {
  const bad = (what: string) => new Error(`${where}: tensor ${name} ${what}; the file is corrupt or not a safetensors file`);
  if (!isRecord(v)) throw bad('has no description (dtype, shape, data_offsets)');
  if (typeof v.dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, v.dtype)) throw new Error(`${where}: tensor ${name} has unsupported dtype ${String(v.dtype)}`);
  if (!Array.isArray(v.shape) || !v.shape.every(isCount)) throw bad('has no shape of whole non-negative sizes');
  const o = v.data_offsets;
  if (!Array.isArray(o) || o.length !== 2 || !isCount(o[0]) || !isCount(o[1]) || o[1] < o[0]) throw bad('has no data_offsets [begin, end]');
  return { dtype: v.dtype as SafeDtype, shape: v.shape as number[], data_offsets: [o[0], o[1]] };
}

function checkedMetadata(v: unknown, where: string): Record<string, string> {
  if (v === null || v === undefined) return {};
  if (!isRecord(v) || !Object.values(v).every((x) => typeof x === 'string')) throw new Error(`${where}: its __metadata__ is not a map of strings; the file is corrupt`);
  return v as Record<string, string>;
}

/** Parses a safetensors file or buffer into named tensors. */
export function readSafetensors(src: string | Uint8Array): Map<string, SafeTensor> {
  return readSafetensorsWithMetadata(src).tensors;
}

/** Serializes tensors (sorted by name, 8-byte aligned header) with optional string metadata. */
export function encodeSafetensors(tensors: Map<string, SafeTensor> | Record<string, SafeTensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, t] of entries) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.byteLength + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.byteLength), true);
  out.set(hb, 8);
  let p = 8 + hb.byteLength;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

/** Writes a safetensors file atomically (readers see the old file or the new one, never half). */
export function writeSafetensors(file: string, tensors: Map<string, SafeTensor> | Record<string, SafeTensor>, metadata?: Record<string, string>, o: AtomicWriteOptions = {}): void {
  atomicWriteFileSync(file, encodeSafetensors(tensors, metadata), o);
}

/** A float32 tensor entry. */
export function f32(shape: number[], data: Float32Array): SafeTensor {
  return { dtype: 'F32', shape, data };
}

/** Widens any float tensor (F32/F16/BF16/F64) to Float32Array. */
export function toFloat32(t: SafeTensor): Float32Array {
  switch (t.dtype) {
    case 'F32': return t.data as Float32Array;
    case 'F64': return Float32Array.from(t.data as Float64Array);
    case 'F16': return halfBitsToFloat32(t.data as Uint16Array);
    case 'BF16': {
      const u = new Uint32Array((t.data as Uint16Array).length);
      (t.data as Uint16Array).forEach((b, i) => (u[i] = b << 16));
      return new Float32Array(u.buffer);
    }
    default: return Float32Array.from(t.data as ArrayLike<number>, Number);
  }
}

let halfTable: Float32Array | undefined;

/** IEEE half bits -> float32 (a 65,536-entry table, built on first use: training converts every gradient each step). */
export function halfBitsToFloat32(h: Uint16Array): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let x = 0; x < 65536; x++) {
      const s = x & 0x8000 ? -1 : 1, e = (x >> 10) & 0x1f, m = x & 0x3ff;
      halfTable[x] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  const t = halfTable;
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = t[h[i]];
  return out;
}

/** float32 -> IEEE half bits (round to nearest even). */
export function float32ToHalfBits(f: Float32Array): Uint16Array {
  const out = new Uint16Array(f.length);
  const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
  for (let i = 0; i < f.length; i++) {
    const x = bits[i], sign = (x >>> 16) & 0x8000, e = ((x >>> 23) & 0xff) - 127 + 15, m = x & 0x7fffff;
    if (((x >>> 23) & 0xff) === 0xff) { out[i] = sign | 0x7c00 | (m ? 0x200 : 0); continue; }
    if (e >= 31) { out[i] = sign | 0x7c00; continue; }
    if (e <= 0) {
      if (e < -10) { out[i] = sign; continue; }
      const mm = m | 0x800000, shift = 14 - e;
      let v = mm >> shift;
      const rem = mm & ((1 << shift) - 1), half = 1 << (shift - 1);
      if (rem > half || (rem === half && v & 1)) v++;
      out[i] = sign | v;
      continue;
    }
    let v = (e << 10) | (m >> 13);
    const rem = m & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && v & 1)) v++;
    out[i] = sign | v;
  }
  return out;
}
