/**
 * A taste that depends on the prompt, judged by geometry (never by a learned model): bigger shapes are better only
 * while the shape is still the one the prompt names.
 */
import type { ImageRGB } from '../image/rgb';
import { pooledDecode } from './clipScenes';
import { measureImage, shapeCoverage } from './measure';
import { compositeScene, RgbImage, Scene, sceneCoverage, ShapeName, SHAPES, SQUARE_HALF_SIDE, TRIANGLE_CIRCUMRADIUS } from './scenes';

/** The shape a prompt names (its first shape word), or undefined when it names none. */
export function promptShape(prompt: string): ShapeName | undefined {
  return prompt.toLowerCase().split(/[^a-z]+/).find((w): w is ShapeName => (SHAPES as readonly string[]).includes(w));
}

/** How well each shape's template fits the image (soft intersection over union, 0..1), and the best fitting shape. */
export interface ShapeFit {
  shape: ShapeName;
  iou: Record<ShapeName, number>;
}

// Area of each shape as a fraction of the image for radius r (scenes.ts), per r².
const AREA_PER_R2: Record<ShapeName, number> = { circle: Math.PI, square: (2 * SQUARE_HALF_SIDE) ** 2, triangle: ((3 * Math.sqrt(3)) / 4) * TRIANGLE_CIRCUMRADIUS ** 2 };

/**
 * Fits an upright circle, square and triangle of the shape's measured area at its centroid (the scenes' shapes are
 * centred on their centroids), softened like the tiny model's decoder softens edges, and compares each with the
 * image's shape coverage. Undefined when the image shows no shape.
 */
export function fitShape(img: ImageRGB | RgbImage): ShapeFit | undefined {
  const m = measureImage(img);
  if (m.area === 0) return undefined;
  const cover = shapeCoverage(img, m);
  const iou = {} as Record<ShapeName, number>;
  for (const shape of SHAPES) {
    const scene: Scene = {
      shape, colour: 'white', background: 'black', size: 'big', position: 'centre', cx: m.cx, cy: m.cy,
      radius: Math.sqrt(m.area / AREA_PER_R2[shape]), captionHasSize: false, captionHasPosition: false,
    };
    const soft = pooledDecode(compositeScene(sceneCoverage(scene, img.width), [1, 1, 1], [0, 0, 0], img.width)).data;
    let inter = 0, union = 0;
    for (let i = 0; i < cover.length; i++) { inter += Math.min(cover[i], soft[i * 3]); union += Math.max(cover[i], soft[i * 3]); }
    iou[shape] = union > 0 ? inter / union : 0;
  }
  const shape = SHAPES.reduce((a, b) => (iou[b] > iou[a] ? b : a));
  return { shape, iou };
}

/** Penalty of a wrong (or missing) shape: more than any difference in size, so a right shape always wins. */
export const WRONG_SHAPE_PENALTY = 1;

/**
 * The fidelity taste's utility: the shape's share of the picture when the geometric test finds the shape the prompt
 * names, that share minus {@link WRONG_SHAPE_PENALTY} when it finds another (or no shape). Prompts without a shape
 * word are judged on size alone.
 */
export function fidelityUtility(img: ImageRGB | RgbImage, prompt: string): number {
  const wanted = promptShape(prompt);
  const fit = fitShape(img);
  const area = fit ? measureImage(img).area : 0;
  return wanted === undefined || fit?.shape === wanted ? area : area - WRONG_SHAPE_PENALTY;
}
