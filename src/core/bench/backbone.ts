/** Reward backbone speed: milliseconds per image (preprocessing included) and per prompt, after a warm-up run. */
import type { Backbone } from '../reward/backbone';
import { renderShape } from '../reward/sim';

/** Settings of a backbone benchmark. */
export interface BackboneBenchOptions {
  /** Images embedded in the timed call (default 8); the backbone runs them in its batches. */
  images?: number;
  /** Side of the generated images before the backbone's preprocessing (default 512, SD 1.5's output). */
  imageSize?: number;
  /** Prompts embedded in the timed call (default 16), all different. */
  prompts?: number;
}

/** Measured backbone speed. */
export interface BackboneBenchResult {
  backbone: string;
  provider: string;
  dim: number;
  images: number;
  imageSize: number;
  msPerImage: number;
  /** Process CPU time (all threads) per image: steadier than wall time on a shared machine. */
  cpuMsPerImage: number;
  prompts: number;
  /** Absent for a backbone without a text tower. */
  msPerPrompt?: number;
  cpuMsPerPrompt?: number;
}

// Wall and whole-process CPU milliseconds of `f`.
async function timed(f: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage(), t0 = performance.now();
  await f();
  const c = process.cpuUsage(c0);
  return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
}

const COLOURS: [number, number, number][] = [[200, 40, 40], [40, 160, 60], [230, 200, 40], [60, 80, 220]];

/** Times one `embed` of `images` generated pictures and one text `embed` of `prompts` prompts, each after a one-item warm-up. */
export async function benchBackbone(bb: Backbone, o: BackboneBenchOptions = {}): Promise<BackboneBenchResult> {
  const n = o.images ?? 8, size = o.imageSize ?? 512, m = o.prompts ?? 16;
  const images = Array.from({ length: n }, (_, i) => renderShape({ shape: i % 2 ? 'disc' : 'square', cx: 0.3 + 0.05 * (i % 5), cy: 0.5, radius: 0.1 + 0.02 * (i % 7), color: COLOURS[i % 4], background: COLOURS[(i + 2) % 4] }, size));
  await bb.embed(images.slice(0, 1));
  const img = await timed(() => bb.embed(images));
  const result: BackboneBenchResult = {
    backbone: bb.label ?? bb.id, provider: bb.provider ?? 'typescript', dim: bb.dim, images: n, imageSize: size, msPerImage: img.wall / n, cpuMsPerImage: img.cpu / n, prompts: 0,
  };
  const text = bb.text;
  if (!text) return result;
  const prompts = Array.from({ length: m }, (_, i) => `a ${i % 2 ? 'big' : 'small'} ${['red', 'green', 'yellow', 'blue'][i % 4]} ${i % 3 ? 'circle' : 'square'} on the ${i % 5 ? 'left' : 'right'} on a ${['black', 'white', 'blue'][i % 3]} background`);
  await text.embed(prompts.slice(0, 1));
  const txt = await timed(() => text.embed(prompts));
  return { ...result, prompts: m, msPerPrompt: txt.wall / m, cpuMsPerPrompt: txt.cpu / m };
}
