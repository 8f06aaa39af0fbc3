import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { crc32, decodePng, encodePng, readPngText } from '../../../src/core/image/png';

const gradient = (w: number, h: number, ch: 1 | 2 | 3 | 4) => ({ width: w, height: h, channels: ch, data: Uint8Array.from({ length: w * h * ch }, (_, i) => (i * 37) & 255) });

test('pixels and text metadata (Latin-1 and UTF-8) survive encode/decode', () => {
  for (const ch of [1, 2, 3, 4] as const) {
    const img = gradient(13, 7, ch);
    const meta = { prompt: 'un café über alles', negative_prompt: '猫の写真', seed: '42' };
    const back = decodePng(encodePng(img, meta));
    assert.deepEqual({ w: back.width, h: back.height, ch: back.channels }, { w: 13, h: 7, ch });
    assert.deepEqual(back.data, img.data);
    assert.deepEqual(back.text, meta);
  }
});

test('CRC-32 matches the standard check value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('all five row filters decode (a PNG written by another encoder)', () => {
  const w = 5, h = 5, img = gradient(w, h, 3);
  const stride = w * 3;
  // Hand-filter rows with filter types 0..4 to mimic other encoders.
  const raw = Buffer.alloc((stride + 1) * h);
  const px = (x: number, y: number) => (x < 0 || y < 0 ? 0 : img.data[y * stride + x]);
  for (let y = 0; y < h; y++) {
    raw[y * (stride + 1)] = y;
    for (let x = 0; x < stride; x++) {
      const a = px(x - 3, y), b = px(x, y - 1), c = px(x - 3, y - 1);
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][y];
      raw[y * (stride + 1) + 1 + x] = (px(x, y) - pred) & 255;
    }
  }
  const png = Buffer.from(encodePng(img));
  // Swap the IDAT payload: find it after the 33-byte signature+IHDR.
  const idat = deflateSync(raw);
  const head = png.subarray(0, 33);
  const len = Buffer.alloc(4); len.writeUInt32BE(idat.length);
  const typeAndBody = Buffer.concat([Buffer.from('IDAT'), idat]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(typeAndBody));
  const iend = png.subarray(png.length - 12);
  assert.deepEqual(decodePng(Buffer.concat([head, len, typeAndBody, crc, iend])).data, img.data);
});

test('a corrupted file is reported with the failing chunk', () => {
  const png = Buffer.from(encodePng(gradient(4, 4, 3), { seed: '1' }));
  png[44] ^= 0xff; // inside the first tEXt body
  assert.throws(() => decodePng(png), /chunk tEXt .* bad CRC/);
  assert.throws(() => decodePng(Buffer.from('GIF89a')), /Not a PNG/);
});

test('a PNG cut off before its end has no readable metadata, so a resumed job makes that image again instead of keeping it', () => {
  const meta = { prompt: 'a red circle', seed: '7' };
  const png = encodePng(gradient(16, 16, 3), meta);
  assert.deepEqual(readPngText(png), meta);
  // cut inside the image data, as a writer without atomic renames leaves it: the text chunks before it are whole
  assert.equal(readPngText(png.subarray(0, png.length - 20)), undefined);
});
