/**
 * Shape judges of the measurement scripts besides the fidelity rater's own geometric test (src/core/tiny/fidelity.ts):
 * a judge made apart from it, to see what a model that saw shapes well, but not exactly as the rater does, could reach.
 */
import { GaussianRng } from '../src/core/diffusion/rng';
import type { ImageRGB } from '../src/core/image/rgb';
import { mulberry32 } from '../src/core/random';
import { clipItem, clipScene, renderClipItem, toImageRGB, TRAIN_AUGMENT } from '../src/core/tiny/clipScenes';
import { measureImage, shapeCoverage } from '../src/core/tiny/measure';
import { COLOURS, SHAPES, type ShapeName } from '../src/core/tiny/scenes';

export type ShapeJudge = (img: ImageRGB) => ShapeName | undefined;

// How wavy the outline is with 3 and 4 waves around the centroid: the outline's distance from the centroid at 72
// angles (where the shape's coverage falls under a half), its 3rd and 4th Fourier amplitudes over its mean.
function outlineWaviness(img: ImageRGB): { w3: number; w4: number } | undefined {
  const m = measureImage(img);
  if (m.area === 0) return undefined;
  const cover = shapeCoverage(img, m), W = img.width, H = img.height;
  const at = (x: number, y: number) => {
    const fx = x - 0.5, fy = y - 0.5, x0 = Math.floor(fx), y0 = Math.floor(fy), tx = fx - x0, ty = fy - y0;
    const c = (u: number, v: number) => (u < 0 || v < 0 || u >= W || v >= H ? 0 : cover[v * W + u]);
    return (c(x0, y0) * (1 - tx) + c(x0 + 1, y0) * tx) * (1 - ty) + (c(x0, y0 + 1) * (1 - tx) + c(x0 + 1, y0 + 1) * tx) * ty;
  };
  const N = 72, r = new Float64Array(N);
  for (let k = 0; k < N; k++) {
    const th = (2 * Math.PI * k) / N;
    let s = 0;
    while (s < W && at(m.cx * W + s * Math.cos(th), m.cy * H + s * Math.sin(th)) >= 0.5) s += 0.1;
    r[k] = s;
  }
  const mean = r.reduce((a, b) => a + b, 0) / N;
  const amp = (waves: number) => {
    let re = 0, im = 0;
    r.forEach((v, k) => { re += v * Math.cos((2 * Math.PI * k * waves) / N); im += v * Math.sin((2 * Math.PI * k * waves) / N); });
    return Math.hypot(re, im) / N / mean;
  };
  return { w3: amp(3), w4: amp(4) };
}

// The outline-profile judge: triangle where the 3-fold waviness passes halfway between the other shapes' and the
// triangles' means on training scenes (src/core/tiny/clipScenes.ts, augmented as for the tiny CLIP), else square where
// the 4-fold one passes halfway between circles' and squares'. Its cuts come from those scenes alone, never from ratings.
export function outlineProfileJudge(): { judge: ShapeJudge; cuts: string } {
  const rand = mulberry32(5), gauss = new GaussianRng(6);
  const sums = Object.fromEntries(SHAPES.map((s) => [s, { w3: 0, w4: 0, n: 0 }]));
  for (let i = 0; i < 600; i++) {
    const shape = SHAPES[i % SHAPES.length], colour = COLOURS[Math.floor(rand() * COLOURS.length)];
    const background = COLOURS.filter((c) => c !== colour)[Math.floor(rand() * (COLOURS.length - 1))];
    const w = outlineWaviness(toImageRGB(renderClipItem(clipItem(clipScene(rand, shape, colour, background), rand), rand, gauss, TRAIN_AUGMENT)));
    if (w) { sums[shape].w3 += w.w3; sums[shape].w4 += w.w4; sums[shape].n++; }
  }
  const m = (s: ShapeName, k: 'w3' | 'w4') => sums[s][k] / sums[s].n;
  const cut3 = ((m('circle', 'w3') + m('square', 'w3')) / 2 + m('triangle', 'w3')) / 2, cut4 = (m('circle', 'w4') + m('square', 'w4')) / 2;
  const judge: ShapeJudge = (img) => {
    const w = outlineWaviness(img);
    return !w ? undefined : w.w3 > cut3 ? 'triangle' : w.w4 > cut4 ? 'square' : 'circle';
  };
  return { judge, cuts: `3-fold ${cut3.toFixed(4)}, 4-fold ${cut4.toFixed(4)}` };
}
