import type { ImageRGB } from './rgb';
import { AC_CHROMA, AC_LUMA, CHROMA_QUANT, DC_CHROMA, DC_LUMA, LUMA_QUANT, ZIGZAG, type HuffmanSpec } from './jpegTables';

/** Options for encodeJpeg. */
export interface JpegOptions {
  /** 1..100, scaled like libjpeg's jpeg_set_quality (default 95, the DDPO setting). */
  quality?: number;
  /** '420' (default; what PIL/libjpeg use at quality 95) or '444'. */
  subsampling?: '420' | '444';
}

/** libjpeg's quality scaling of a base table: q<50 -> 5000/q %, else 200-2q %; entries clamped to 1..255. */
export function scaledQuantTable(base: readonly number[], quality: number): number[] {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? Math.floor(5000 / q) : 200 - 2 * q;
  return base.map((v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
}

/** Encode RGB HWC pixels as a baseline JFIF JPEG (standard Annex K Huffman tables, no restart markers). */
export function encodeJpeg(img: ImageRGB, opts: JpegOptions = {}): Uint8Array {
  const { width: w, height: h, data } = img;
  if (!(w > 0 && h > 0 && w < 65536 && h < 65536)) throw new Error(`encodeJpeg: image size ${w}x${h} is outside 1..65535`);
  if (data.length !== w * h * 3) throw new Error(`encodeJpeg: expected ${w * h * 3} bytes of RGB for ${w}x${h}, got ${data.length}`);
  const quality = opts.quality ?? 95;
  const sub = opts.subsampling ?? '420';
  const qY = scaledQuantTable(LUMA_QUANT, quality);
  const qC = scaledQuantTable(CHROMA_QUANT, quality);
  const out = new ByteWriter();
  writeHeaders(out, w, h, qY, qC, sub);
  const planes = toYCbCr(img);
  const bits = new BitWriter(out);
  const tables = { dcY: huffCodes(DC_LUMA), acY: huffCodes(AC_LUMA), dcC: huffCodes(DC_CHROMA), acC: huffCodes(AC_CHROMA) };
  const mcu = sub === '420' ? 16 : 8;
  const pred = [0, 0, 0];
  const block = new Float64Array(64);
  for (let my = 0; my < h; my += mcu) {
    for (let mx = 0; mx < w; mx += mcu) {
      for (let by = 0; by < mcu; by += 8) {
        for (let bx = 0; bx < mcu; bx += 8) {
          loadBlock(planes[0], w, h, mx + bx, my + by, 1, block);
          pred[0] = encodeBlock(bits, block, qY, pred[0], tables.dcY, tables.acY);
        }
      }
      const f = sub === '420' ? 2 : 1;
      for (let c = 1; c < 3; c++) {
        loadBlock(planes[c], w, h, mx, my, f, block);
        pred[c] = encodeBlock(bits, block, qC, pred[c], tables.dcC, tables.acC);
      }
    }
  }
  bits.flush();
  out.u16(0xffd9);
  return out.bytes();
}

function writeHeaders(out: ByteWriter, w: number, h: number, qY: number[], qC: number[], sub: '420' | '444'): void {
  out.u16(0xffd8);
  out.u16(0xffe0); out.u16(16); out.raw([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]); // JFIF 1.01, aspect 1:1
  for (const [id, table] of [[0, qY], [1, qC]] as const) {
    out.u16(0xffdb); out.u16(67); out.u8(id);
    for (let k = 0; k < 64; k++) out.u8(table[ZIGZAG[k]]);
  }
  out.u16(0xffc0); out.u16(17); out.u8(8); out.u16(h); out.u16(w); out.u8(3);
  out.raw([1, sub === '420' ? 0x22 : 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]);
  for (const [cls, id, spec] of [[0, 0, DC_LUMA], [1, 0, AC_LUMA], [0, 1, DC_CHROMA], [1, 1, AC_CHROMA]] as const) {
    out.u16(0xffc4); out.u16(3 + 16 + spec.values.length); out.u8((cls << 4) | id);
    out.raw(spec.bits); out.raw(spec.values);
  }
  out.u16(0xffda); out.u16(12); out.u8(3);
  out.raw([1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

// JFIF YCbCr (full range), level-shifted by -128 so blocks are centred on zero.
function toYCbCr(img: ImageRGB): Float32Array[] {
  const n = img.width * img.height;
  const y = new Float32Array(n), cb = new Float32Array(n), cr = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = img.data[3 * i], g = img.data[3 * i + 1], b = img.data[3 * i + 2];
    y[i] = 0.299 * r + 0.587 * g + 0.114 * b - 128;
    cb[i] = -0.168736 * r - 0.331264 * g + 0.5 * b;
    cr[i] = 0.5 * r - 0.418688 * g - 0.081312 * b;
  }
  return [y, cb, cr];
}

// Fill an 8x8 block at (x0,y0) in output-sample units; f=2 averages 2x2 pixels (4:2:0). Edges replicate the last pixel.
function loadBlock(p: Float32Array, w: number, h: number, x0: number, y0: number, f: number, block: Float64Array): void {
  for (let by = 0; by < 8; by++) {
    for (let bx = 0; bx < 8; bx++) {
      let s = 0;
      for (let dy = 0; dy < f; dy++) {
        const yy = Math.min(h - 1, (y0 + by * f) + dy);
        for (let dx = 0; dx < f; dx++) s += p[yy * w + Math.min(w - 1, x0 + bx * f + dx)];
      }
      block[by * 8 + bx] = s / (f * f);
    }
  }
}

// COS[u*8+x] = C(u)/2 * cos((2x+1)uπ/16), so the 2-D DCT-II is COS · f · COSᵀ.
const COS = (() => {
  const t = new Float64Array(64);
  for (let u = 0; u < 8; u++) for (let x = 0; x < 8; x++) t[u * 8 + x] = (u === 0 ? Math.SQRT1_2 : 1) / 2 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  return t;
})();
const tmp = new Float64Array(64);

function fdct(block: Float64Array): void {
  for (let y = 0; y < 8; y++) for (let u = 0; u < 8; u++) {
    let s = 0;
    for (let x = 0; x < 8; x++) s += COS[u * 8 + x] * block[y * 8 + x];
    tmp[y * 8 + u] = s;
  }
  for (let u = 0; u < 8; u++) for (let v = 0; v < 8; v++) {
    let s = 0;
    for (let y = 0; y < 8; y++) s += COS[v * 8 + y] * tmp[y * 8 + u];
    block[v * 8 + u] = s;
  }
}

interface Codes { code: Uint16Array; len: Uint8Array }

function huffCodes(spec: HuffmanSpec): Codes {
  const code = new Uint16Array(256), len = new Uint8Array(256);
  let c = 0, k = 0;
  for (let l = 1; l <= 16; l++) {
    for (let i = 0; i < spec.bits[l - 1]; i++) { code[spec.values[k]] = c++; len[spec.values[k]] = l; k++; }
    c <<= 1;
  }
  return { code, len };
}

// Magnitude category of v and its JPEG bit pattern (negative values as one's complement).
function category(v: number): number {
  let a = Math.abs(v), n = 0;
  while (a) { n++; a >>= 1; }
  return n;
}
const vbits = (v: number, n: number) => (v < 0 ? v + (1 << n) - 1 : v);

function encodeBlock(bits: BitWriter, block: Float64Array, q: number[], prevDc: number, dc: Codes, ac: Codes): number {
  fdct(block);
  const z = new Int32Array(64);
  for (let k = 0; k < 64; k++) z[k] = Math.round(block[ZIGZAG[k]] / q[ZIGZAG[k]]);
  const diff = z[0] - prevDc;
  const cat = category(diff);
  bits.put(dc.code[cat], dc.len[cat]);
  if (cat) bits.put(vbits(diff, cat), cat);
  let run = 0;
  for (let k = 1; k < 64; k++) {
    if (z[k] === 0) { run++; continue; }
    while (run > 15) { bits.put(ac.code[0xf0], ac.len[0xf0]); run -= 16; }
    const s = category(z[k]);
    const sym = (run << 4) | s;
    bits.put(ac.code[sym], ac.len[sym]);
    bits.put(vbits(z[k], s), s);
    run = 0;
  }
  if (run > 0) bits.put(ac.code[0], ac.len[0]);
  return z[0];
}

class ByteWriter {
  private buf = new Uint8Array(1 << 14);
  private n = 0;
  u8(v: number): void {
    if (this.n === this.buf.length) { const b = new Uint8Array(this.buf.length * 2); b.set(this.buf); this.buf = b; }
    this.buf[this.n++] = v & 0xff;
  }
  u16(v: number): void { this.u8(v >> 8); this.u8(v); }
  raw(a: readonly number[]): void { for (const v of a) this.u8(v); }
  bytes(): Uint8Array { return this.buf.slice(0, this.n); }
}

class BitWriter {
  private acc = 0;
  private nbits = 0;
  constructor(private out: ByteWriter) {}
  put(value: number, len: number): void {
    for (let i = len - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >> i) & 1);
      if (++this.nbits === 8) this.emit();
    }
  }
  // Pad the last byte with 1-bits, as T.81 F.1.2.3 asks.
  flush(): void { while (this.nbits !== 0) this.put(1, 1); }
  private emit(): void {
    this.out.u8(this.acc);
    if (this.acc === 0xff) this.out.u8(0); // byte stuffing
    this.acc = 0; this.nbits = 0;
  }
}
