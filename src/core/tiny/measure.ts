/** Measures a one-shape image from its pixels: background and shape colour, size, centroid, and the nearest palette names. */
import { COLOURS, ColourName, PALETTE, RgbImage, ShapeName } from './scenes';

/** An 8-bit HWC RGB image (what the PNG and generation code produce). */
export interface Rgb8Image {
  width: number;
  height: number;
  data: Uint8Array;
}

/** What {@link measureImage} found. Coordinates are fractions of width/height (x right, y down). */
export interface ImageMeasurement {
  background: [number, number, number];
  backgroundName: ColourName;
  /** Mean colour of the pixels that differ from the background (the background colour when none do). */
  shape: [number, number, number];
  shapeName: ColourName;
  /** Fraction of the image covered by the shape (0 when nothing stands out). */
  area: number;
  cx: number;
  cy: number;
  /** Distance of the centroid from the image centre, 0 (centred) .. ~0.7 (corner). */
  offCentre: number;
  /** Warmth of the shape colour in [-1, 1]: red/orange/yellow positive, blue/purple/green negative. */
  warmth: number;
  /** Share of the shape's bounding box it fills: ~0.95 square, ~0.78 circle, ~0.5 triangle. */
  fill: number;
  /** The shape the fill suggests. */
  shapeGuess: ShapeName;
}

/** Converts an 8-bit image to floats in [0, 1]. */
export function toFloatImage(img: Rgb8Image | RgbImage): RgbImage {
  if (img.data instanceof Float32Array) return img as RgbImage;
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = img.data[i] / 255;
  return { width: img.width, height: img.height, data };
}

const dist2 = (a: ArrayLike<number>, b: ArrayLike<number>) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2;

/** The palette colour nearest to `rgb` (Euclidean in sRGB). */
export function nearestColour(rgb: ArrayLike<number>, among: readonly ColourName[] = COLOURS): ColourName {
  let best = among[0];
  for (const n of among) if (dist2(rgb, PALETTE[n]) < dist2(rgb, PALETTE[best])) best = n;
  return best;
}

/** Warmth in [-1, 1]: (R - B) weighted by saturation, so greys and white/black score 0. */
export function warmth(rgb: ArrayLike<number>): number {
  const mx = Math.max(rgb[0], rgb[1], rgb[2]), mn = Math.min(rgb[0], rgb[1], rgb[2]);
  const sat = mx - mn;
  return sat < 1e-6 ? 0 : ((rgb[0] - rgb[2]) / sat) * sat;
}

// The background is the median colour of the border ring; pixels farther than `threshold` from it are the shape.
function borderMedian(img: RgbImage): [number, number, number] {
  const { width: w, height: h, data } = img;
  const chans: number[][] = [[], [], []];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (x > 0 && y > 0 && x < w - 1 && y < h - 1) continue;
    for (let c = 0; c < 3; c++) chans[c].push(data[(y * w + x) * 3 + c]);
  }
  return chans.map((v) => { v.sort((a, b) => a - b); return v[v.length >> 1]; }) as [number, number, number];
}

/**
 * Estimates background, shape colour, area and centroid of a one-shape image (8-bit or float HWC RGB).
 * Background: median of the border pixels. Shape colour: mean of the pixels farthest from it (at least `threshold`
 * away). Each pixel's coverage is its projection onto the background→shape colour line, so anti-aliased edges count partly.
 */
export function measureImage(input: Rgb8Image | RgbImage, threshold = 0.25): ImageMeasurement {
  const img = toFloatImage(input);
  const { width: w, height: h, data } = img;
  const n = w * h;
  const bg = borderMedian(img);
  const d = new Float32Array(n);
  let maxD = 0;
  for (let i = 0; i < n; i++) { d[i] = Math.sqrt(dist2(data.subarray(i * 3, i * 3 + 3), bg)); maxD = Math.max(maxD, d[i]); }
  const none = (): ImageMeasurement => ({
    background: bg, backgroundName: nearestColour(bg), shape: [...bg], shapeName: nearestColour(bg), area: 0, cx: 0.5, cy: 0.5, offCentre: 0, warmth: 0,
    fill: 0, shapeGuess: 'circle',
  });
  if (maxD < threshold) return none();
  const core = Math.max(threshold, 0.7 * maxD);
  const fg = [0, 0, 0];
  let nCore = 0;
  for (let i = 0; i < n; i++) if (d[i] >= core) { nCore++; for (let c = 0; c < 3; c++) fg[c] += data[i * 3 + c]; }
  const shape: [number, number, number] = [fg[0] / nCore, fg[1] / nCore, fg[2] / nCore];
  const cover = coverageOf(img, bg, shape);
  let area = 0, sx = 0, sy = 0, solid = 0, x0 = w, x1 = -1, y0 = h, y1 = -1;
  for (let i = 0; i < n; i++) {
    const a = cover[i];
    if (a === 0) continue;
    const x = i % w, y = Math.floor(i / w);
    area += a; sx += a * (x + 0.5); sy += a * (y + 0.5);
    if (a >= 0.5) { solid++; x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  if (area === 0) return none();
  const cx = sx / area / w, cy = sy / area / h;
  const fill = solid > 0 ? solid / ((x1 - x0 + 1) * (y1 - y0 + 1)) : 0;
  return {
    background: bg, backgroundName: nearestColour(bg), shape, shapeName: nearestColour(shape), area: area / n, cx, cy,
    offCentre: Math.hypot(cx - 0.5, cy - 0.5), warmth: warmth(shape),
    fill, shapeGuess: fill > 0.88 ? 'square' : fill > 0.64 ? 'circle' : 'triangle',
  };
}

/** Each pixel's share of shape in [0, 1] given a measurement's background and shape colours (0 where under 0.2). */
export function shapeCoverage(input: Rgb8Image | RgbImage, m: ImageMeasurement): Float64Array {
  return coverageOf(toFloatImage(input), m.background, m.shape);
}

// The projection of each pixel onto the background→shape colour line; below 0.2 it is sampling noise, not shape.
function coverageOf(img: RgbImage, bg: ArrayLike<number>, shape: ArrayLike<number>): Float64Array {
  const data = img.data, n = img.width * img.height;
  const axis = [shape[0] - bg[0], shape[1] - bg[1], shape[2] - bg[2]];
  const len2 = axis[0] ** 2 + axis[1] ** 2 + axis[2] ** 2;
  const out = new Float64Array(n);
  if (len2 === 0) return out;
  for (let i = 0; i < n; i++) {
    const o = i * 3;
    const a = Math.min(1, Math.max(0, ((data[o] - bg[0]) * axis[0] + (data[o + 1] - bg[1]) * axis[1] + (data[o + 2] - bg[2]) * axis[2]) / len2));
    out[i] = a < 0.2 ? 0 : a;
  }
  return out;
}
