/** Seeded procedural scenes (one coloured shape on a plain background) with their captions, rendered anti-aliased. */

/** Shapes the generator draws. */
export const SHAPES = ['circle', 'square', 'triangle'] as const;
/** Named colours with their sRGB values in [0, 1]; used for shapes and backgrounds. */
export const PALETTE = {
  red: [0.86, 0.16, 0.16],
  orange: [0.96, 0.55, 0.08],
  yellow: [0.94, 0.86, 0.16],
  green: [0.16, 0.67, 0.24],
  blue: [0.16, 0.31, 0.86],
  purple: [0.55, 0.2, 0.71],
  white: [0.96, 0.96, 0.96],
  black: [0.08, 0.08, 0.08],
} as const satisfies Record<string, readonly [number, number, number]>;
/** Shape sizes: the shape's half-extent as a fraction of the image side. */
export const SIZES = { small: 0.15, big: 0.3 } as const;
/** Where the shape sits: its centre as fractions of width and height (x right, y down). */
export const POSITIONS = {
  left: [0.3, 0.5], right: [0.7, 0.5], top: [0.5, 0.3], bottom: [0.5, 0.7], centre: [0.5, 0.5],
} as const satisfies Record<string, readonly [number, number]>;

export type ShapeName = (typeof SHAPES)[number];
export type ColourName = keyof typeof PALETTE;
export type SizeName = keyof typeof SIZES;
export type PositionName = keyof typeof POSITIONS;

/** Colour names in palette order. */
export const COLOURS = Object.keys(PALETTE) as ColourName[];
const SIZE_NAMES = Object.keys(SIZES) as SizeName[];
const POSITION_NAMES = Object.keys(POSITIONS) as PositionName[];

/** Everything that determines one image; `cx`, `cy`, `radius` are fractions of the image side. */
export interface Scene {
  shape: ShapeName;
  colour: ColourName;
  size: SizeName;
  position: PositionName;
  background: ColourName;
  cx: number;
  cy: number;
  radius: number;
  /** Which attributes the caption names (shape, colour and background always are). */
  captionHasSize: boolean;
  captionHasPosition: boolean;
}

/** An RGB image, HWC, values in [0, 1]. */
export interface RgbImage {
  width: number;
  height: number;
  data: Float32Array;
}


const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)];

/** Draws a random scene; the same `rand` sequence always gives the same scene. */
export function randomScene(rand: () => number): Scene {
  const shape = pick(rand, SHAPES);
  const colour = pick(rand, COLOURS);
  const background = pick(rand, COLOURS.filter((c) => c !== colour));
  const size = pick(rand, SIZE_NAMES);
  const position = pick(rand, POSITION_NAMES);
  const captionHasSize = rand() < 0.8;
  const captionHasPosition = rand() < 0.7;
  const jitter = () => (rand() - 0.5) * 0.08;
  const [px, py] = POSITIONS[position];
  const radius = SIZES[size] * (0.9 + rand() * 0.2);
  return { shape, colour, size, position, background, cx: px + jitter(), cy: py + jitter(), radius, captionHasSize, captionHasPosition };
}

const POSITION_PHRASE: Record<PositionName, string> = {
  left: 'on the left', right: 'on the right', top: 'at the top', bottom: 'at the bottom', centre: 'in the centre',
};

/** "a big red circle on the left on a blue background" (size and position only when the scene says to name them). */
export function caption(s: Scene): string {
  const words = ['a', ...(s.captionHasSize ? [s.size] : []), s.colour, s.shape, ...(s.captionHasPosition ? [POSITION_PHRASE[s.position]] : []), 'on a', s.background, 'background'];
  return words.join(' ');
}

/** Every word any caption can contain (plus synonyms users type), for the tokenizer vocabulary. */
export function captionWords(): string[] {
  const phrases = Object.values(POSITION_PHRASE).join(' ').split(' ');
  return [...new Set(['a', ...SIZE_NAMES, ...COLOURS, ...SHAPES, ...phrases, 'on', 'background', 'center', 'an', 'of', 'and', 'photo', 'image'])];
}

/** Half the side of a square of radius r, per r: the square has the circle's area. */
export const SQUARE_HALF_SIDE = 0.886;
/** The circumradius of a triangle of radius r, per r (upward equilateral, centred on its centroid). */
export const TRIANGLE_CIRCUMRADIUS = 1.2;

/** Signed inside test for the shape at pixel-space point (x, y) (fractions of the side). */
function inside(s: Scene, x: number, y: number): boolean {
  const dx = x - s.cx, dy = y - s.cy, r = s.radius;
  switch (s.shape) {
    case 'circle': return dx * dx + dy * dy <= r * r;
    case 'square': return Math.abs(dx) <= r * SQUARE_HALF_SIDE && Math.abs(dy) <= r * SQUARE_HALF_SIDE;
    case 'triangle': {
      const R = r * TRIANGLE_CIRCUMRADIUS;
      const h = -dy; // up is positive
      if (h < -R / 2) return false;
      const halfWidth = ((R - h) / (1.5 * R)) * (R * Math.sqrt(3)) / 2;
      return h <= R && Math.abs(dx) <= halfWidth;
    }
  }
}

/**
 * Signed distance (fractions of the side, negative inside) from a shape of radius r centred at the origin, the shape
 * {@link inside} tests: exact for the circle and the square, the largest side-line distance for the triangle (exact
 * inside). Blending two shapes' distances draws the outlines between them.
 */
export function shapeSignedDistance(shape: ShapeName, dx: number, dy: number, r: number): number {
  switch (shape) {
    case 'circle': return Math.hypot(dx, dy) - r;
    case 'square': {
      const h = r * SQUARE_HALF_SIDE, qx = Math.abs(dx) - h, qy = Math.abs(dy) - h;
      return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0);
    }
    case 'triangle': {
      // inradius half the circumradius; y grows downwards
      const R = r * TRIANGLE_CIRCUMRADIUS, s3 = Math.sqrt(3) / 2;
      return Math.max(dy, -0.5 * dy + s3 * dx, -0.5 * dy - s3 * dx) - R / 2;
    }
  }
}

/** Renders a scene at `size`x`size` with 4x4 supersampling; returns HWC RGB in [0, 1]. */
export function renderScene(s: Scene, size = 32): RgbImage {
  return compositeScene(sceneCoverage(s, size), PALETTE[s.colour], PALETTE[s.background], size);
}

/**
 * The share of each pixel the shape covers (4x4 supersampling), row-major `size`x`size`. `warp` moves each sample
 * point (fractions of the side) before the inside test, for shapes with uneven edges.
 */
export function sceneCoverage(s: Scene, size = 32, warp?: (x: number, y: number) => [number, number]): Float32Array {
  return supersampledCoverage((x, y) => inside(s, x, y), size, warp);
}

/** The share of each pixel (4x4 supersampling) where `isInside` holds at the (warped) sample point, row-major `size`x`size`. */
export function supersampledCoverage(isInside: (x: number, y: number) => boolean, size = 32, warp?: (x: number, y: number) => [number, number]): Float32Array {
  const cover = new Float32Array(size * size);
  const ss = 4;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let hits = 0;
      for (let sy = 0; sy < ss; sy++) for (let sx = 0; sx < ss; sx++) {
        const px = (x + (sx + 0.5) / ss) / size, py = (y + (sy + 0.5) / ss) / size;
        const [wx, wy] = warp ? warp(px, py) : [px, py];
        if (isInside(wx, wy)) hits++;
      }
      cover[y * size + x] = hits / (ss * ss);
    }
  }
  return cover;
}

/** Blends shape colour `fg` over background `bg` by coverage; returns HWC RGB in [0, 1]. */
export function compositeScene(cover: Float32Array, fg: ArrayLike<number>, bg: ArrayLike<number>, size = 32): RgbImage {
  const data = new Float32Array(size * size * 3);
  for (let p = 0; p < size * size; p++) {
    const a = cover[p];
    for (let c = 0; c < 3; c++) data[p * 3 + c] = a * fg[c] + (1 - a) * bg[c];
  }
  return { width: size, height: size, data };
}
