/**
 * Contrastive training data for the tiny CLIP: shapes-world scenes with continuous sizes and positions, captions that
 * name some of what they show, which captions truly describe which images (the soft targets), and images made to look
 * like the tiny diffusion model's (colours off the palette, its pooled decoder's soft edges, a little noise).
 */
import { GaussianRng } from '../diffusion/rng';
import type { ImageRGB } from '../image/rgb';
import { shuffled } from '../random';
import { encodeLatent } from './model';
import { COLOURS, ColourName, compositeScene, PALETTE, RgbImage, Scene, sceneCoverage, shapeSignedDistance, ShapeName, SHAPES, supersampledCoverage } from './scenes';

/** Size words of the tiny CLIP's captions, smallest first (a superset of the tiny diffusion model's "small" and "big"). */
export const CLIP_SIZES = ['tiny', 'small', 'medium', 'big', 'huge'] as const;
export type ClipSize = (typeof CLIP_SIZES)[number];

/** What a caption claims: shape (or a blob: an outline that is no shape), colour and background always, size only when it names one. */
export interface ClipClaim {
  shape: ShapeName | 'blob';
  colour: ColourName;
  background: ColourName;
  size?: ClipSize;
}

/**
 * A shape between two: the outline blends the signed distances of `from` and `toward` (equal areas), `t` of the way
 * (0: `from`, 1: `toward`), as the tiny diffusion model's rounded squares and squarish circles are. The scene's shape is
 * the nearer one (`from` while t < 1/2), which is what its caption names.
 */
export interface Morph {
  from: ShapeName;
  toward: ShapeName;
  t: number;
}

/**
 * One training or evaluation item: the scene drawn (between two shapes when `morph` is set; with a lumpy outline, no
 * shape at all, when `blob` is) and the caption written for it.
 */
export interface ClipItem {
  scene: Scene;
  claim: ClipClaim;
  caption: string;
  morph?: Morph;
  blob?: boolean;
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

/** Whether `claim` is true of what `item` shows (a named size must be the scene's clear size class; a blob is no shape but a blob). */
export function describes(claim: ClipClaim, item: Pick<ClipItem, 'scene' | 'blob'>): boolean {
  const { scene } = item;
  return claim.shape === (item.blob ? 'blob' : scene.shape) && claim.colour === scene.colour && claim.background === scene.background
    && (claim.size === undefined || claim.size === sizeClass(scene.radius));
}

const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)];

/**
 * A scene of the given shape and colours at a position that keeps it mostly in view; its radius is random over the
 * whole range, within ±10% of `near` when it is a number, or within `near` when it is a range.
 */
export function clipScene(rand: () => number, shape: ShapeName, colour: ColourName, background: ColourName, near?: number | readonly [number, number]): Scene {
  const radius = near === undefined ? RADIUS_MIN + rand() * (RADIUS_MAX - RADIUS_MIN)
    : typeof near === 'number' ? Math.min(RADIUS_MAX, Math.max(RADIUS_MIN, near * (0.9 + 0.2 * rand())))
    : near[0] + rand() * (near[1] - near[0]);
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

/** A scene `t` of the way from one shape to another, captioned with the nearer shape (see {@link Morph}). */
export function morphItem(rand: () => number, morph: Morph, colour: ColourName, background: ColourName, near?: number, nameSize = 0.7): ClipItem {
  const scene = clipScene(rand, morph.t < 0.5 ? morph.from : morph.toward, colour, background, near);
  return { ...clipItem(scene, rand, nameSize), morph };
}

/** A blob: an outline halfway between two shapes (a third to two thirds of the way), made lumpy when rendered. */
export function blobItem(rand: () => number, from: ShapeName, toward: ShapeName, colour: ColourName, background: ColourName, near?: number): ClipItem {
  const morph = { from, toward, t: 0.3 + 0.4 * rand() };
  const scene = clipScene(rand, from, colour, background, near);
  const size = sizeClass(scene.radius);
  const claim: ClipClaim = { shape: 'blob', colour, background, ...(size && rand() < 0.7 ? { size } : {}) };
  return { scene, claim, caption: claimCaption(claim), morph, blob: true };
}

/** The largest displacement of a blob's outline (fraction of the side): well past the ordinary shapes' {@link TRAIN_AUGMENT} wobble. */
const BLOB_WOBBLE = 0.05;

/**
 * What tells a group's captions apart (its items always share colour and background, so colour never does):
 * - `shape`: one size, different shapes;
 * - `free`: shapes and sizes drawn freely;
 * - `free-off`: as `free`, but half the items a little way (under a third) towards another shape;
 * - `between`: one size, one pair of shapes, each item a different way between them: only how square, round or pointed
 *   it is tells (the caption names the nearer shape);
 * - `size`: one shape at sizes of different size words, most of them named: only the size tells.
 * - `shape-size`: two shapes, each at two sizes of different size words, most of them named: both tell.
 * - `blob`: one size, two shapes and two blobs (outlines halfway between two shapes, lumpy): only whether the outline
 *   is a shape at all, and which, tells.
 */
export type ClipGroupKind = 'shape' | 'free' | 'free-off' | 'between' | 'size' | 'blob' | 'shape-size';

/** Every group kind, for the training script's choices. */
export const CLIP_GROUP_KINDS: readonly ClipGroupKind[] = ['shape', 'free', 'free-off', 'between', 'size', 'blob', 'shape-size'];

/** The cycle of group kinds the embedded tiny CLIP (media/tiny-clip) was trained on. */
export const DEFAULT_CLIP_GROUPS: readonly ClipGroupKind[] = ['shape', 'free'];

/** A batch of `groups` x `groupSize` items whose groups cycle through `kinds` (see {@link ClipGroupKind}). */
export function drawClipBatch(rand: () => number, groups: number, groupSize: number, kinds: readonly ClipGroupKind[] = DEFAULT_CLIP_GROUPS): ClipItem[] {
  const items: ClipItem[] = [];
  for (let g = 0; g < groups; g++) {
    const colour = pick(rand, COLOURS);
    const background = pick(rand, COLOURS.filter((c) => c !== colour));
    const shapes = shuffled(SHAPES, rand);
    const kind = kinds[g % kinds.length];
    const near = kind === 'shape' || kind === 'between' || kind === 'blob' ? RADIUS_MIN + rand() * (RADIUS_MAX - RADIUS_MIN) : undefined;
    const words = kind === 'size' || kind === 'shape-size' ? shuffled(CLIP_SIZES, rand) : CLIP_SIZES;
    for (let k = 0; k < groupSize; k++) {
      const shape = k < shapes.length ? shapes[k] : pick(rand, SHAPES);
      if (kind === 'free-off' && rand() < 0.5) items.push(morphItem(rand, { from: shape, toward: pick(rand, SHAPES.filter((x) => x !== shape)), t: 0.3 * rand() }, colour, background));
      else if (kind === 'between') items.push(morphItem(rand, { from: shapes[0], toward: shapes[1], t: (k + rand()) / groupSize }, colour, background, near));
      else if (kind === 'blob' && k >= 2) items.push(blobItem(rand, shapes[k - 2], pick(rand, SHAPES.filter((x) => x !== shapes[k - 2])), colour, background, near));
      else if (kind === 'shape-size') items.push(clipItem(clipScene(rand, shapes[k % 2], colour, background, SIZE_BANDS[words[k < 2 ? 0 : 1]]), rand, 0.9));
      else if (kind === 'size') items.push(clipItem(clipScene(rand, shapes[0], colour, background, SIZE_BANDS[words[k % words.length]]), rand, 0.9));
      else items.push(clipItem(clipScene(rand, shape, colour, background, near), rand));
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
  for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) m[i * B + j] = i === j || describes(items[j].claim, items[i]) ? 1 : 0;
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
  const warp = wobble(rand, item.blob ? Math.max(a.wobble, BLOB_WOBBLE) : a.wobble);
  const cover = item.morph ? morphCoverage(item.scene, item.morph, size, warp) : sceneCoverage(item.scene, size, warp);
  let img = compositeScene(cover, jitter(PALETTE[item.scene.colour]), jitter(PALETTE[item.scene.background]), size);
  if (rand() < a.decoded) img = pooledDecode(img);
  if (a.noise > 0) {
    const sd = rand() * a.noise, n = new Float32Array(img.data.length);
    gauss.fill(n);
    for (let i = 0; i < n.length; i++) img.data[i] = Math.min(1, Math.max(0, img.data[i] + sd * n[i]));
  }
  return img;
}

/** Coverage of a shape between two (as sceneCoverage draws one): where the blended signed distance is below 0. */
export function morphCoverage(s: Scene, m: Morph, size = 32, warp?: (x: number, y: number) => [number, number]): Float32Array {
  return supersampledCoverage((x, y) => {
    const dx = x - s.cx, dy = y - s.cy;
    return (1 - m.t) * shapeSignedDistance(m.from, dx, dy, s.radius) + m.t * shapeSignedDistance(m.toward, dx, dy, s.radius) <= 0;
  }, size, warp);
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
