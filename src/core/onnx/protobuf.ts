/** Minimal protobuf wire-format reader and writer (enough for ONNX's messages). */

export const enum Wire { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 }

/** Reads fields of one message; `next()` returns field number and wire type, then read the value. */
export class PbReader {
  pos: number;
  private readonly view: DataView;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.byteLength) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  done(): boolean { return this.pos >= this.end; }
  /** Next tag as [field, wireType]. */
  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t % 8];
  }
  /** Unsigned varint as a number (exact up to 2^53). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated protobuf varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
  }
  /** Varint as a signed 64-bit bigint (two's complement, as int64 fields are encoded). */
  varint64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated protobuf varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7n;
    }
    return BigInt.asIntN(64, result);
  }
  /** Signed int64 varint as a number. */
  int(): number { return Number(this.varint64()); }
  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.end) throw new Error('truncated protobuf field');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** A sub-reader over a length-delimited field. */
  sub(): PbReader {
    const n = this.varint();
    if (this.pos + n > this.end) throw new Error('truncated protobuf message');
    const r = new PbReader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
  string(): string { return new TextDecoder().decode(this.bytes()); }
  float(): number { const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  double(): number { const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  skip(wire: number): void {
    switch (wire) {
      case Wire.Varint: this.varint(); break;
      case Wire.Fixed64: this.pos += 8; break;
      // length first: `this.pos += this.varint()` would add it to the position from before the length varint
      case Wire.Bytes: { const n = this.varint(); this.pos += n; break; }
      case Wire.Fixed32: this.pos += 4; break;
      default: throw new Error(`unsupported protobuf wire type ${wire}`);
    }
  }
  /** Repeated scalar: packed (Bytes) or one element; `each` reads one value from the reader. */
  repeated<T>(wire: number, each: (r: PbReader) => T, out: T[]): void {
    if (wire === Wire.Bytes) {
      const r = this.sub();
      while (!r.done()) out.push(each(r));
    } else out.push(each(this));
  }
}

/** Accumulates an encoded message in growable chunks. */
export class PbWriter {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1024);
  private len = 0;
  private total = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.cur.length) return;
    if (this.len) this.chunks.push(this.cur.subarray(0, this.len));
    this.cur = new Uint8Array(Math.max(n, 64 * 1024));
    this.len = 0;
  }
  get length(): number { return this.total; }
  varint(v: number | bigint): this {
    let x = typeof v === 'bigint' ? BigInt.asUintN(64, v) : v < 0 ? BigInt.asUintN(64, BigInt(v)) : v;
    this.ensure(10);
    if (typeof x === 'bigint') {
      while (x >= 0x80n) { this.cur[this.len++] = Number(x & 0x7fn) | 0x80; this.total++; x >>= 7n; }
      this.cur[this.len++] = Number(x); this.total++;
    } else {
      while (x >= 0x80) { this.cur[this.len++] = (x % 128) | 0x80; this.total++; x = Math.floor(x / 128); }
      this.cur[this.len++] = x; this.total++;
    }
    return this;
  }
  tag(field: number, wire: Wire): this { return this.varint(field * 8 + wire); }
  raw(b: Uint8Array): this {
    if (b.byteLength > 4096) {
      if (this.len) { this.chunks.push(this.cur.subarray(0, this.len)); this.cur = new Uint8Array(1024); this.len = 0; }
      this.chunks.push(b);
    } else {
      this.ensure(b.byteLength);
      this.cur.set(b, this.len);
      this.len += b.byteLength;
    }
    this.total += b.byteLength;
    return this;
  }
  bytesField(field: number, b: Uint8Array): this { return this.tag(field, Wire.Bytes).varint(b.byteLength).raw(b); }
  stringField(field: number, s: string): this { return this.bytesField(field, new TextEncoder().encode(s)); }
  varintField(field: number, v: number | bigint): this { return this.tag(field, Wire.Varint).varint(v); }
  floatField(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.tag(field, Wire.Fixed32).raw(b);
  }
  messageField(field: number, m: PbWriter): this {
    this.tag(field, Wire.Bytes).varint(m.length);
    for (const c of m.finishChunks()) this.raw(c);
    return this;
  }
  /** Packed repeated varints. */
  packedVarints(field: number, vs: ArrayLike<number | bigint>): this {
    if (!vs.length) return this;
    const w = new PbWriter();
    for (let i = 0; i < vs.length; i++) w.varint(vs[i]);
    return this.messageField(field, w);
  }
  packedFloats(field: number, vs: ArrayLike<number>): this {
    if (!vs.length) return this;
    const f = Float32Array.from(vs);
    return this.bytesField(field, new Uint8Array(f.buffer));
  }
  finishChunks(): Uint8Array[] {
    return this.len ? [...this.chunks, this.cur.subarray(0, this.len)] : this.chunks;
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.total);
    let o = 0;
    for (const c of this.finishChunks()) { out.set(c, o); o += c.byteLength; }
    return out;
  }
}
