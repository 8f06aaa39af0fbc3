import type { ImageRGB } from '../image/rgb';

/** Foreground measurements of an image whose subject differs from its border colour. */
export interface ForegroundStats {
  /** Fraction of pixels that differ from the border colour. */
  area: number;
  /** Foreground centroid in [0,1] image coordinates (0.5, 0.5 when there is no foreground). */
  cx: number;
  cy: number;
  /** Root-mean-square distance of foreground pixels from their centroid, in image widths. */
  spread: number;
  /** Mean foreground colour in [0,1]. */
  r: number;
  g: number;
  b: number;
}

/**
 * Which foreground the features measure. 2: background = per-channel median of the border ring, foreground = the
 * largest 4-connected region that differs from it. 1 (kept for old reward models): border mean, every differing pixel;
 * a shape touching the edge drags the mean towards itself, and scattered noise counts as foreground.
 */
export type FeatureVersion = 1 | 2;

/** Segment the image against its border colour and measure the foreground. */
export function foregroundStats(img: ImageRGB, version: FeatureVersion = 2): ForegroundStats {
  const { width: w, height: h, data } = img;
  const ring: number[][] = [[], [], []];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (x !== 0 && y !== 0 && x !== w - 1 && y !== h - 1) continue;
    const i = (y * w + x) * 3;
    for (let c = 0; c < 3; c++) ring[c].push(data[i + c]);
  }
  const bg = ring.map((v) => {
    if (version === 1) return v.reduce((a, b) => a + b, 0) / v.length;
    v.sort((a, b) => a - b);
    return v[v.length >> 1];
  });
  const mask = new Uint8Array(w * h);
  for (let p = 0; p < w * h; p++) {
    const i = p * 3;
    mask[p] = Math.abs(data[i] - bg[0]) + Math.abs(data[i + 1] - bg[1]) + Math.abs(data[i + 2] - bg[2]) >= 60 ? 1 : 0;
  }
  const keep = version === 1 ? mask : largestRegion(mask, w, h);
  let n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sr = 0, sg = 0, sb = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (!keep[y * w + x]) continue;
    const i = (y * w + x) * 3;
    const fx = (x + 0.5) / w, fy = (y + 0.5) / h;
    n++; sx += fx; sy += fy; sxx += fx * fx; syy += fy * fy;
    sr += data[i]; sg += data[i + 1]; sb += data[i + 2];
  }
  if (n === 0) return { area: 0, cx: 0.5, cy: 0.5, spread: 0, r: bg[0] / 255, g: bg[1] / 255, b: bg[2] / 255 };
  const cx = sx / n, cy = sy / n;
  const spread = Math.sqrt(Math.max(0, sxx / n - cx * cx + syy / n - cy * cy));
  return { area: n / (w * h), cx, cy, spread, r: sr / n / 255, g: sg / n / 255, b: sb / n / 255 };
}

// The largest 4-connected set of mask pixels (flood fill from each unvisited one), as a 0/1 mask.
function largestRegion(mask: Uint8Array, w: number, h: number): Uint8Array {
  const label = new Int32Array(w * h);
  const stack: number[] = [];
  let best = 0, bestSize = 0, next = 0;
  for (let s = 0; s < w * h; s++) {
    if (!mask[s] || label[s]) continue;
    next++;
    let size = 0;
    label[s] = next;
    stack.push(s);
    while (stack.length) {
      const p = stack.pop()!;
      size++;
      const x = p % w;
      for (const q of [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, p - w, p + w]) {
        if (q >= 0 && q < w * h && mask[q] && !label[q]) { label[q] = next; stack.push(q); }
      }
    }
    if (size > bestSize) { bestSize = size; best = next; }
  }
  return Uint8Array.from(label, (l) => (l === best && best > 0 ? 1 : 0));
}

/** Length of the built-in feature vector. */
export const STATS_FEATURE_DIM = 31;

/**
 * Cheap hand-made image features: 4-bin colour histograms, colour mean/std, edge energy, and foreground
 * moments (area, centroid, distance from centre, spread, colour, warmth). They exist so that tests and the
 * demo, whose images are procedural shapes, have a backbone in which a simulated rater's taste (size,
 * centring, warmth) is actually visible — the small CLIP fixture has random weights, so its embeddings
 * carry no such signal and could not show whether the reward model learns.
 */
export function statsFeatures(img: ImageRGB, version: FeatureVersion = 2): Float32Array {
  const { width: w, height: h, data } = img;
  const n = w * h;
  const f = new Float32Array(STATS_FEATURE_DIM);
  const sum = [0, 0, 0], sq = [0, 0, 0];
  let edge = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = data[i * 3 + c];
      f[c * 4 + (v >> 6)] += 1 / n;
      sum[c] += v / 255; sq[c] += (v / 255) ** 2;
      if (i % w !== w - 1) edge += Math.abs(v - data[(i + 1) * 3 + c]) / 255;
      if (i + w < n) edge += Math.abs(v - data[(i + w) * 3 + c]) / 255;
    }
  }
  for (let c = 0; c < 3; c++) {
    f[12 + c] = sum[c] / n;
    f[15 + c] = Math.sqrt(Math.max(0, sq[c] / n - (sum[c] / n) ** 2));
  }
  f[18] = edge / (6 * n);
  const s = foregroundStats(img, version);
  const dist = Math.hypot(s.cx - 0.5, s.cy - 0.5);
  f.set([s.area, Math.sqrt(s.area), s.cx, s.cy, Math.abs(s.cx - 0.5), Math.abs(s.cy - 0.5), dist, s.spread, s.r, s.g, s.b, s.r - s.b], 19);
  return f;
}
