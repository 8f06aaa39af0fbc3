/** Scenes built by hand for the tiny-model tests, and the analytic area their measurements are checked against. */
import { POSITIONS, SIZES, type ColourName, type PositionName, type Scene, type ShapeName, type SizeName } from '../../../src/core/tiny/scenes';

/** A scene with the given attributes at its nominal place and size; the caption names every attribute. */
export function makeScene(shape: ShapeName, colour: ColourName, background: ColourName, size: SizeName = 'big', position: PositionName = 'centre'): Scene {
  const [cx, cy] = POSITIONS[position];
  return { shape, colour, size, position, background, cx, cy, radius: SIZES[size], captionHasSize: true, captionHasPosition: true };
}

/** Fraction of the image the scene's shape covers (analytic, for checking measurements). */
export function shapeArea(s: Scene): number {
  const r = s.radius;
  switch (s.shape) {
    case 'circle': return Math.PI * r * r;
    case 'square': return (2 * 0.886 * r) ** 2;
    case 'triangle': { const R = 1.2 * r; return (3 * Math.sqrt(3) / 4) * R * R; }
  }
}
