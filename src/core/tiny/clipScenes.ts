/**
 * Contrastive training data for the tiny CLIP: shapes-world scenes with continuous sizes and positions, captions that
 * name some of what they show, which captions truly describe which images (the soft targets), and images made to look
 * like the tiny diffusion model's (colours off the palette, its pooled decoder's soft edges, a little noise).
 */
import { GaussianRng } from '../diffusion/rng';
import type { ImageRGB } from '../image/rgb';
import { shuffled } from '../random';
import { encodeLatent } from './model';
import { COLOURS, ColourName, compositeScene, PALETTE, RgbImage, Scene, sceneCoverage, ShapeName, SHAPES } from './scenes';

/** Size words of the tiny CLIP's captions, smallest first (a superset of the tiny diffusion model's "small" and "big"). */
export const CLIP_SIZES = ['tiny', 'small', 'medium', 'big', 'huge'] as const;
export type ClipSize = (typeof CLIP_SIZES)[number];

/** What a caption claims: shape, colour and background always, size only when it names one. */
export interface ClipClaim {
  shape: ShapeName;
  colour: ColourName;
  background: ColourName;
  size?: ClipSize;
}

/** One training or evaluation item: the scene drawn and the caption written for it. */
export interface ClipItem {
  scene: Scene;
  claim: ClipClaim;
  caption: string;
}

// Shape radii (fractions of the side) the data spans, and the radius band of each size word; between bands a caption
// names no size. "small" and "big" hold the tiny diffusion model's small (0.15) and big (0.3) shapes.
const RADIUS_MIN = 0.1, RADIUS_MAX = 0.38;
const SIZE_BANDS: Record<ClipSize, [number, number]> = {
  tiny: [0.1, 0.125], small: [0.135, 0.175], medium: [0.19, 0.24], big: [0.255, 0.32], huge: [0.335, 0.38],
};

/** The size word a person would use for a shape of this radius, or undefined between the bands. */
export function sizeClass(radius: number): ClipSize | undefined {
  return CLIP_SIZES.find((w) => radius >= SIZE_BANDS[w][0] && radius <= SIZE_BANDS[w][1]);
}

const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');

/** "a big red circle on a blue background"; the articles agree with the next word, as the demo's prompts do. */
export function claimCaption(c: ClipClaim): string {
  const lead = c.size ?? c.colour;
  return [article(lead), ...(c.size ? [c.size] : []), c.colour, c.shape, 'on', article(c.background), c.background, 'background'].join(' ');
}

/** Whether `claim` is true of `scene` (a named size must be the scene's clear size class). */
export function describes(claim: ClipClaim, scene: Scene): boolean {
  return claim.shape === scene.shape && claim.colour === scene.colour && claim.background === scene.background
    && (claim.size === undefined || claim.size === sizeClass(scene.radius));
}

const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)];

/**
 * A scene of the given shape and colours at a position that keeps it mostly in view; its radius is random over the
 * whole range, or within ±10% of `near` when given.
 */
export function clipScene(rand: () => number, shape: ShapeName, colour: ColourName, background: ColourName, near?: number): Scene {
  const radius = near === undefined ? RADIUS_MIN + rand() * (RADIUS_MAX - RADIUS_MIN) : Math.min(RADIUS_MAX, Math.max(RADIUS_MIN, near * (0.9 + 0.2 * rand())));
  const span = Math.max(0, 1 - 2 * radius) * 0.9;
  const cx = 0.5 + (rand() - 0.5) * span, cy = 0.5 + (rand() - 0.5) * span;
  return { shape, colour, background, size: radius < 0.225 ? 'small' : 'big', position: 'centre', cx, cy, radius, captionHasSize: sizeClass(radius) !== undefined, captionHasPosition: false };
}

/** The caption of a scene: its size named with probability `nameSize` when it has a clear one. */
export function clipItem(scene: Scene, rand: () => number, nameSize = 0.7): ClipItem {
  const size = sizeClass(scene.radius);
  const claim: ClipClaim = { shape: scene.shape, colour: scene.colour, background: scene.background, ...(size && rand() < nameSize ? { size } : {}) };
  return { scene, claim, caption: claimCaption(claim) };
}

/**
 * A batch of `groups` x `groupSize` items. The items of a group share colour and background; in every other group
 * they also share their size and differ in shape, in the rest shapes and sizes are drawn freely. So colour never tells
 * a caption's image apart, and half the groups can only be told apart by shape.
 */
export function drawClipBatch(rand: () => number, groups: number, groupSize: number): ClipItem[] {
  const items: ClipItem[] = [];
  for (let g = 0; g < groups; g++) {
    const colour = pick(rand, COLOURS);
    const background = pick(rand, COLOURS.filter((c) => c !== colour));
    const shapes = shuffled(SHAPES, rand);
    const near = g % 2 === 0 ? RADIUS_MIN + rand() * (RADIUS_MAX - RADIUS_MIN) : undefined;
    for (let k = 0; k < groupSize; k++) {
      items.push(clipItem(clipScene(rand, k < shapes.length ? shapes[k] : pick(rand, SHAPES), colour, background, near), rand));
    }
  }
  return items;
}

/**
 * Soft contrastive targets `[B, B]`, row-major: `imageToText[i][j]` spreads image i's probability over every caption
 * that truly describes it, `textToImage[j][i]` spreads caption j's over every image it describes (the diagonal always).
 */
export function matchTargets(items: ClipItem[]): { imageToText: Float32Array; textToImage: Float32Array } {
  const B = items.length;
  const m = new Float32Array(B * B);
  for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) m[i * B + j] = i === j || describes(items[j].claim, items[i].scene) ? 1 : 0;
  const imageToText = new Float32Array(B * B), textToImage = new Float32Array(B * B);
  for (let i = 0; i < B; i++) {
    let row = 0, col = 0;
    for (let j = 0; j < B; j++) { row += m[i * B + j]; col += m[j * B + i]; }
    for (let j = 0; j < B; j++) { imageToText[i * B + j] = m[i * B + j] / row; textToImage[i * B + j] = m[j * B + i] / col; }
  }
  return { imageToText, textToImage };
}

/** How far images stray from the clean renders, like the tiny diffusion model's samples. */
export interface Augment {
  /** Std of the per-channel shift of the shape and background colours. */
  colourJitter: number;
  /** Share of images passed through the tiny model's latent encoding and decoder (2x2 mean, bilinear x2). */
  decoded: number;
  /** Largest std of the per-pixel noise (each image draws its own in [0, this]). */
  noise: number;
  /** Largest displacement of the shape's edge (fraction of the side): low-frequency waves make edges uneven. */
  wobble: number;
}

/** The augmentation of training images; {@link CLEAN} renders the palette colours exactly. */
export const TRAIN_AUGMENT: Augment = { colourJitter: 0.06, decoded: 0.75, noise: 0.03, wobble: 0.015 };
export const CLEAN: Augment = { colourJitter: 0, decoded: 0, noise: 0, wobble: 0 };

/** Renders an item's scene at 32x32 with the given augmentation; HWC RGB in [0, 1]. */
export function renderClipItem(item: ClipItem, rand: () => number, gauss: GaussianRng, a: Augment = TRAIN_AUGMENT, size = 32): RgbImage {
  const jitter = (rgb: readonly number[]) => {
    const d = new Float32Array(3);
    if (a.colourJitter > 0) gauss.fill(d);
    return rgb.map((v, c) => Math.min(1, Math.max(0, v + a.colourJitter * d[c])));
  };
  let img = compositeScene(sceneCoverage(item.scene, size, wobble(rand, a.wobble)), jitter(PALETTE[item.scene.colour]), jitter(PALETTE[item.scene.background]), size);
  if (rand() < a.decoded) img = pooledDecode(img);
  if (a.noise > 0) {
    const sd = rand() * a.noise, n = new Float32Array(img.data.length);
    gauss.fill(n);
    for (let i = 0; i < n.length; i++) img.data[i] = Math.min(1, Math.max(0, img.data[i] + sd * n[i]));
  }
  return img;
}

// A random smooth displacement: each axis moves along a sine of the other, 2-4 waves across the image.
function wobble(rand: () => number, amount: number): ((x: number, y: number) => [number, number]) | undefined {
  if (amount <= 0) return undefined;
  const a = amount * rand(), b = amount * rand(), fa = 2 + 2 * rand(), fb = 2 + 2 * rand(), pa = rand(), pb = rand();
  return (x, y) => [x + a * Math.sin(2 * Math.PI * (fa * y + pa)), y + b * Math.sin(2 * Math.PI * (fb * x + pb))];
}

/** The image as the tiny model's fixed decoder returns it: 2x2-mean latent, then bilinear x2 (half-pixel centres). */
export function pooledDecode(img: RgbImage): RgbImage {
  const w = img.width / 2, h = img.height / 2, plane = w * h;
  const lat = encodeLatent(img);
  const out = new Float32Array(img.data.length);
  const at = (c: number, x: number, y: number) => (lat[c * plane + Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))] + 1) / 2;
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) {
    const sx = (x + 0.5) / 2 - 0.5, sy = (y + 0.5) / 2 - 0.5;
    const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
    for (let c = 0; c < 3; c++) {
      out[(y * img.width + x) * 3 + c] = (at(c, x0, y0) * (1 - fx) + at(c, x0 + 1, y0) * fx) * (1 - fy) + (at(c, x0, y0 + 1) * (1 - fx) + at(c, x0 + 1, y0 + 1) * fx) * fy;
    }
  }
  return { width: img.width, height: img.height, data: out };
}

/** A float image as 8-bit RGB (what generated images and the PNGs a person rates are). */
export function toImageRGB(img: RgbImage): ImageRGB {
  return { width: img.width, height: img.height, data: Uint8Array.from(img.data, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)) };
}
