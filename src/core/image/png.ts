import { deflateSync, inflateSync } from 'node:zlib';

/** An 8-bit image, pixels interleaved row-major (`channels` = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA). */
export interface RasterImage {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
}

/** A decoded PNG: pixels plus its text metadata (tEXt, iTXt and zTXt chunks). */
export interface DecodedPng extends RasterImage {
  text: Record<string, string>;
}

const SIGNATURE = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);
const COLOR_TYPE: Record<number, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };
const CHANNELS: Record<number, 1 | 2 | 3 | 4> = { 0: 1, 4: 2, 2: 3, 6: 4 };

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 as PNG chunks use it. */
export function crc32(bytes: Uint8Array, crc = 0xffffffff): number {
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, body: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'latin1');
  out.set(body, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}

// tEXt is Latin-1 only; anything else (e.g. a prompt in Japanese) goes into an uncompressed UTF-8 iTXt chunk.
function textChunk(key: string, value: string): Buffer {
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(key)) throw new Error(`PNG text keyword '${key}' must be 1-79 Latin-1 characters`);
  if (/^[\x00-\xff]*$/.test(value) && !value.includes('\0')) return chunk('tEXt', Buffer.from(`${key}\0${value}`, 'latin1'));
  return chunk('iTXt', Buffer.concat([Buffer.from(`${key}\0\0\0\0\0`, 'latin1'), Buffer.from(value, 'utf8')]));
}

/** Encodes an 8-bit image as PNG (Sub filter on every row) with text metadata chunks. */
export function encodePng(img: RasterImage, text: Record<string, string> = {}): Uint8Array {
  const { width, height, channels, data } = img;
  if (data.length !== width * height * channels) throw new Error(`encodePng: ${data.length} bytes for ${width}x${height}x${channels}`);
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    raw[o] = 1; // Sub filter: each byte minus the byte one pixel to the left; compresses smooth images well.
    for (let x = 0; x < stride; x++) {
      const v = data[y * stride + x];
      raw[o + 1 + x] = (v - (x >= channels ? data[y * stride + x - channels] : 0)) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = COLOR_TYPE[channels];
  return Buffer.concat([
    SIGNATURE, chunk('IHDR', ihdr),
    ...Object.entries(text).map(([k, v]) => textChunk(k, v)),
    chunk('IDAT', deflateSync(raw, { level: 6 })), chunk('IEND', new Uint8Array(0)),
  ]);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decodes a non-interlaced 8-bit gray/RGB/RGBA PNG and its text chunks; errors say what is unsupported. */
export function decodePng(bytes: Uint8Array): DecodedPng {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || !SIGNATURE.every((b, i) => buf[i] === b)) throw new Error('Not a PNG file (bad signature)');
  let pos = 8;
  let width = 0, height = 0, colorType = -1;
  const idat: Buffer[] = [];
  const text: Record<string, string> = {};
  while (pos + 12 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (crc32(buf.subarray(pos + 4, pos + 8 + len)) !== buf.readUInt32BE(pos + 8 + len)) throw new Error(`PNG chunk ${type} at byte ${pos} has a bad CRC; the file is corrupt`);
    pos += 12 + len;
    if (type === 'IHDR') {
      width = body.readUInt32BE(0); height = body.readUInt32BE(4); colorType = body[9];
      if (body[8] !== 8 || body[12] !== 0 || !(colorType in CHANNELS)) throw new Error(`Unsupported PNG: bit depth ${body[8]}, color type ${body[9]}, interlace ${body[12]} (need 8-bit, non-interlaced gray/RGB/RGBA)`);
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    else readTextChunk(type, body, text);
  }
  if (colorType < 0) throw new Error('PNG has no IHDR chunk');
  const channels = CHANNELS[colorType];
  const stride = width * channels;
  const raw = inflateSync(Buffer.concat(idat));
  if (raw.length < (stride + 1) * height) throw new Error(`PNG image data is truncated (${raw.length} of ${(stride + 1) * height} bytes)`);
  const data = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    if (f > 4) throw new Error(`PNG row ${y} has unknown filter type ${f}`);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? data[row + x - channels] : 0;
      const b = y > 0 ? data[row - stride + x] : 0;
      const c = x >= channels && y > 0 ? data[row - stride + x - channels] : 0;
      const v = raw[src + x];
      data[row + x] = f === 0 ? v : f === 1 ? v + a : f === 2 ? v + b : f === 3 ? v + ((a + b) >> 1) : v + paeth(a, b, c);
    }
  }
  return { width, height, channels, data, text };
}

// Adds a tEXt, zTXt or iTXt chunk's keyword and value to `text`; other chunk types are ignored.
function readTextChunk(type: string, body: Buffer, text: Record<string, string>): void {
  const z = body.indexOf(0);
  const key = body.toString('latin1', 0, z);
  if (type === 'tEXt') text[key] = body.toString('latin1', z + 1);
  else if (type === 'zTXt') text[key] = inflateSync(body.subarray(z + 2)).toString('latin1');
  else if (type === 'iTXt') {
    const compressed = body[z + 1] === 1;
    let p = body.indexOf(0, z + 3); // language tag
    p = body.indexOf(0, p + 1); // translated keyword
    const payload = body.subarray(p + 1);
    text[key] = (compressed ? inflateSync(payload) : payload).toString('utf8');
  }
}

const IEND_CHUNK = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/**
 * The text metadata of a PNG file written by {@link encodePng} (text chunks come before the image data), read without
 * decoding pixels; undefined when the file is not a complete PNG (bad signature or CRC, or no IEND at its end).
 */
export function readPngText(bytes: Uint8Array): Record<string, string> | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 + IEND_CHUNK.length || !SIGNATURE.every((b, i) => buf[i] === b) || !buf.subarray(buf.length - IEND_CHUNK.length).equals(IEND_CHUNK)) return undefined;
  const text: Record<string, string> = {};
  for (let pos = 8; pos + 12 <= buf.length;) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    if (type === 'IDAT' || type === 'IEND') return text;
    if (pos + 12 + len > buf.length || crc32(buf.subarray(pos + 4, pos + 8 + len)) !== buf.readUInt32BE(pos + 8 + len)) return undefined;
    readTextChunk(type, buf.subarray(pos + 8, pos + 8 + len), text);
    pos += 12 + len;
  }
  return undefined;
}
