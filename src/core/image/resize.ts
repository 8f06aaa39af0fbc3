/**
 * Resampling as PIL's `Image.resize` does it (the resize CLIP's image processor runs): a separable filter whose support
 * widens by the reduction factor, so a downscale averages every source pixel instead of sampling a few (no aliasing),
 * each pass rounded to 8 bits like PIL's.
 */
import type { ImageRGB } from './rgb';

/** PIL's filters by the number `preprocessor_config.json` gives as `resample`: 2 bilinear, 3 bicubic. */
export type ResampleFilter = 'bilinear' | 'bicubic';

/** The filter PIL numbers `resample` (2 bilinear, 3 bicubic; others fall back to bicubic, CLIP's). */
export function resampleFilter(pilCode: unknown): ResampleFilter {
  return pilCode === 2 ? 'bilinear' : 'bicubic';
}

const FILTERS: Record<ResampleFilter, { support: number; f: (x: number) => number }> = {
  bilinear: { support: 1, f: (x) => Math.max(0, 1 - Math.abs(x)) },
  // Keys' cubic with a = -0.5, as PIL
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5, t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
};

/** For output positions `first..first+count-1` of an axis resized from `inSize` to `outSize`: the first source index and normalised weights. */
function axisWeights(inSize: number, outSize: number, first: number, count: number, filter: ResampleFilter): { start: number; w: Float64Array }[] {
  const { support, f } = FILTERS[filter];
  const scale = inSize / outSize;
  const fscale = Math.max(scale, 1);
  const reach = support * fscale;
  return Array.from({ length: count }, (_, k) => {
    const center = (first + k + 0.5) * scale;
    const start = Math.max(0, Math.trunc(center - reach + 0.5));
    const end = Math.min(inSize, Math.trunc(center + reach + 0.5));
    const w = new Float64Array(Math.max(0, end - start));
    let sum = 0;
    for (let i = 0; i < w.length; i++) { w[i] = f((start + i - center + 0.5) / fscale); sum += w[i]; }
    if (sum !== 0) for (let i = 0; i < w.length; i++) w[i] /= sum;
    return { start, w };
  });
}

const to8 = (v: number) => Math.min(255, Math.max(0, Math.round(v)));

/**
 * The `crop` window (left, top, width, height in the resized image) of `img` resized to `width` x `height`: only the
 * window is computed. The horizontal pass runs first, then the vertical one, as in PIL.
 */
export function resizeCropped(img: ImageRGB, width: number, height: number, crop: { left: number; top: number; width: number; height: number }, filter: ResampleFilter): ImageRGB {
  const xs = axisWeights(img.width, width, crop.left, crop.width, filter);
  const ys = axisWeights(img.height, height, crop.top, crop.height, filter);
  const rowsNeeded = { from: Math.min(...ys.map((y) => y.start)), to: Math.max(...ys.map((y) => y.start + y.w.length)) };
  // horizontal pass over the source rows the vertical pass reads
  const mid = new Uint8Array((rowsNeeded.to - rowsNeeded.from) * crop.width * 3);
  for (let y = rowsNeeded.from; y < rowsNeeded.to; y++) {
    const src = y * img.width * 3, dst = (y - rowsNeeded.from) * crop.width * 3;
    xs.forEach(({ start, w }, x) => {
      let r = 0, g = 0, b = 0;
      for (let i = 0; i < w.length; i++) {
        const p = src + (start + i) * 3;
        r += w[i] * img.data[p]; g += w[i] * img.data[p + 1]; b += w[i] * img.data[p + 2];
      }
      mid[dst + x * 3] = to8(r); mid[dst + x * 3 + 1] = to8(g); mid[dst + x * 3 + 2] = to8(b);
    });
  }
  const out = new Uint8Array(crop.width * crop.height * 3);
  ys.forEach(({ start, w }, y) => {
    for (let x = 0; x < crop.width; x++) {
      let r = 0, g = 0, b = 0;
      for (let i = 0; i < w.length; i++) {
        const p = ((start + i - rowsNeeded.from) * crop.width + x) * 3;
        r += w[i] * mid[p]; g += w[i] * mid[p + 1]; b += w[i] * mid[p + 2];
      }
      const o = (y * crop.width + x) * 3;
      out[o] = to8(r); out[o + 1] = to8(g); out[o + 2] = to8(b);
    }
  });
  return { width: crop.width, height: crop.height, data: out };
}
