import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { encodeJpeg, scaledQuantTable } from '../../../src/core/image/jpeg';
import { AC_CHROMA, AC_LUMA, LUMA_QUANT } from '../../../src/core/image/jpegTables';
import { jpegCompressibility, jpegIncompressibility } from '../../../src/core/reward/jpegReward';
import type { ImageRGB } from '../../../src/core/image/rgb';
import { requireInput } from '../fixtures';

function testImage(w: number, h: number, noise: number, seed = 1): ImageRGB {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 3;
    const inDisc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (w / 4) ** 2;
    const base = inDisc ? [220, 80, 40] : [40 + x, 90 + y / 2, 160];
    for (let c = 0; c < 3; c++) data[i + c] = Math.max(0, Math.min(255, Math.round(base[c] + noise * (rnd() - 0.5))));
  }
  return { width: w, height: h, data };
}

/**
 * ImageMagick's `magick` or `convert` binary, the first on PATH that is not a script standing in for it (some
 * environments put one first); its path, the stand-ins passed over and its version line.
 */
function findImageMagick(): { bin: string; passedOver: string[]; version: string } | undefined {
  const passedOver: string[] = [];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of ['magick', 'convert']) {
      const bin = path.join(dir, name);
      let head: string;
      try { head = fs.readFileSync(bin).subarray(0, 2).toString('latin1'); } catch { continue; }
      if (head === '#!') { passedOver.push(bin); continue; }
      try {
        const version = execFileSync(bin, ['-version'], { encoding: 'utf8' }).split('\n')[0];
        if (version.includes('ImageMagick')) return { bin, passedOver, version };
      } catch { /* not runnable: look further */ }
    }
  }
  return undefined;
}
const imageMagick = findImageMagick();

/** Decode with ImageMagick into raw RGB. */
function decode(jpg: Uint8Array, dir: string, name: string): Uint8Array {
  const f = path.join(dir, name + '.jpg');
  fs.writeFileSync(f, jpg);
  return new Uint8Array(execFileSync(imageMagick!.bin, [f, '-depth', '8', 'rgb:-']));
}

const psnr = (a: Uint8Array, b: Uint8Array) => {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return 10 * Math.log10((255 * 255) / (se / a.length));
};

test('Annex K Huffman tables list every AC symbol exactly once', () => {
  const expected = new Set([0x00, 0xf0]);
  for (let r = 0; r < 16; r++) for (let s = 1; s <= 10; s++) expected.add((r << 4) | s);
  for (const t of [AC_LUMA, AC_CHROMA]) {
    assert.equal(t.bits.reduce((a, b) => a + b, 0), t.values.length);
    assert.deepEqual(new Set(t.values), expected);
  }
});

test('quality scaling follows libjpeg (q50 = base table, q95 = 10%, q100 = all ones)', () => {
  assert.deepEqual(scaledQuantTable(LUMA_QUANT, 50), LUMA_QUANT);
  assert.equal(scaledQuantTable(LUMA_QUANT, 95)[0], 2); // (16*10+50)/100
  assert.ok(scaledQuantTable(LUMA_QUANT, 100).every((v) => v === 1));
});

test('output is a well-formed baseline JFIF stream', () => {
  const jpg = encodeJpeg(testImage(37, 23, 30));
  assert.deepEqual([...jpg.slice(0, 4)], [0xff, 0xd8, 0xff, 0xe0]);
  assert.deepEqual([...jpg.slice(-2)], [0xff, 0xd9]);
  const sof = jpg.findIndex((v, i) => v === 0xff && jpg[i + 1] === 0xc0);
  assert.ok(sof > 0, 'has an SOF0 (baseline) marker');
  assert.equal((jpg[sof + 5] << 8) | jpg[sof + 6], 23);
  assert.equal((jpg[sof + 7] << 8) | jpg[sof + 8], 37);
});

test('size grows with detail and with quality (the compressibility rewards order images accordingly)', () => {
  const smooth = testImage(64, 64, 0), noisy = testImage(64, 64, 120);
  assert.ok(jpegCompressibility(smooth) > jpegCompressibility(noisy));
  assert.ok(jpegIncompressibility(noisy) > jpegIncompressibility(smooth));
  const sizes = [30, 60, 80, 95, 100].map((q) => encodeJpeg(noisy, { quality: q }).length);
  for (let i = 1; i < sizes.length; i++) assert.ok(sizes[i] > sizes[i - 1], `sizes by quality ${sizes}`);
  assert.ok(encodeJpeg(noisy, { subsampling: '444' }).length > encodeJpeg(noisy, { subsampling: '420' }).length);
});

test('an independent decoder reads our files back as faithfully as libjpeg output, at about the same size', { skip: requireInput(imageMagick !== undefined, 'ImageMagick is not installed (no `magick` or `convert` binary on PATH); install imagemagick to decode-check the JPEG encoder') }, (t) => {
  t.diagnostic(`decoding with ${imageMagick!.version} at ${imageMagick!.bin}` + (imageMagick!.passedOver.length ? ` (passed over the script${imageMagick!.passedOver.length > 1 ? 's' : ''} ${imageMagick!.passedOver.join(', ')} earlier on PATH)` : ''));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-jpeg-'));
  for (const [w, h] of [[64, 64], [45, 29], [8, 8], [1, 1]]) {
    const img = testImage(w, h, 20, w);
    const raw = path.join(dir, `${w}.rgb`);
    fs.writeFileSync(raw, img.data);
    for (const sub of ['444', '420'] as const) {
      const label = `${w}x${h} ${sub}`;
      const ours = encodeJpeg(img, { quality: 95, subsampling: sub });
      const back = decode(ours, dir, `ours${w}${sub}`);
      assert.equal(back.length, img.data.length, `${label}: decoded size`);
      // libjpeg's encoder at the same settings (standard tables, no Huffman optimisation) as the yardstick.
      const ref = execFileSync(imageMagick!.bin, ['-size', `${w}x${h}`, '-depth', '8', 'rgb:' + raw, '-quality', '95',
        '-sampling-factor', sub === '420' ? '2x2' : '1x1', '-define', 'jpeg:optimize-coding=false', 'jpg:-']);
      const refBack = decode(ref, dir, `ref${w}${sub}`);
      assert.ok(psnr(img.data, back) > psnr(img.data, refBack) - 0.5, `${label}: PSNR ${psnr(img.data, back).toFixed(1)} vs libjpeg ${psnr(img.data, refBack).toFixed(1)} dB`);
      assert.ok(psnr(back, refBack) > 38, `${label}: our decode differs from libjpeg's by PSNR ${psnr(back, refBack).toFixed(1)} dB`);
      if (w * h >= 64 * 64) assert.ok(Math.abs(ours.length - ref.length) / ref.length < 0.05, `${label}: ours ${ours.length} B vs libjpeg ${ref.length} B`);
    }
  }
});
