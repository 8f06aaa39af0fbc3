/** The before/after picture: one row per held-out prompt, base images on the left, tuned images on the right. */
import type { RasterImage } from '../image/png';
import type { ImageRGB } from '../image/rgb';

/** One row of the grid: images of one prompt, base and tuned, in the same seed order. */
export interface GridRow {
  base: ImageRGB[];
  tuned: ImageRGB[];
}

/** How the grid is laid out, in words (written to report.json next to the file name). */
export const GRID_LAYOUT =
  'one row per held-out prompt (in report.eval.prompts order); left block labelled BASE = base model, right block labelled TUNED = ' +
  'fine-tuned model; column k of both blocks uses the same prompt and seed (report.grid.seeds[k])';

// 5x7 bitmap glyphs for the two labels only.
const GLYPHS: Record<string, string[]> = {
  B: ['11110', '10001', '10001', '11110', '10001', '10001', '11110'],
  A: ['01110', '10001', '10001', '11111', '10001', '10001', '10001'],
  S: ['01111', '10000', '10000', '01110', '00001', '00001', '11110'],
  E: ['11111', '10000', '10000', '11110', '10000', '10000', '11111'],
  T: ['11111', '00100', '00100', '00100', '00100', '00100', '00100'],
  U: ['10001', '10001', '10001', '10001', '10001', '10001', '01110'],
  N: ['10001', '11001', '10101', '10011', '10001', '10001', '10001'],
  D: ['11110', '10001', '10001', '10001', '10001', '10001', '11110'],
};

/** Composes the grid: images scaled up `scale` times (nearest), separated by `gap` pixels, a label row on top. */
export function composeGrid(rows: GridRow[], o: { scale?: number; gap?: number } = {}): RasterImage {
  const scale = o.scale ?? 3, gap = o.gap ?? 4;
  if (rows.length === 0 || rows[0].base.length === 0) throw new Error('composeGrid: no images to lay out');
  const cols = rows[0].base.length;
  const cell = rows[0].base[0].width * scale;
  const block = cols * cell + (cols - 1) * gap;
  const blockGap = 6 * gap;
  const header = 7 * 2 + 2 * gap;
  const width = 2 * block + blockGap + 2 * gap, height = header + rows.length * (cell + gap) + gap;
  const out: RasterImage = { width, height, channels: 3, data: new Uint8Array(width * height * 3).fill(255) };
  const set = (x: number, y: number, rgb: ArrayLike<number>) => { const i = (y * width + x) * 3; out.data[i] = rgb[0]; out.data[i + 1] = rgb[1]; out.data[i + 2] = rgb[2]; };
  const left0 = gap, right0 = gap + block + blockGap;
  drawText(set, 'BASE', left0, gap, 2);
  drawText(set, 'TUNED', right0, gap, 2);
  rows.forEach((row, r) => {
    if (row.base.length !== cols || row.tuned.length !== cols) throw new Error(`composeGrid: row ${r} has ${row.base.length} base and ${row.tuned.length} tuned images; expected ${cols} of each`);
    const y0 = header + r * (cell + gap);
    for (let c = 0; c < cols; c++) {
      blit(set, row.base[c], left0 + c * (cell + gap), y0, scale);
      blit(set, row.tuned[c], right0 + c * (cell + gap), y0, scale);
    }
  });
  // a grey rule between the blocks
  const mid = gap + block + blockGap / 2;
  for (let y = 0; y < height; y++) set(mid, y, [160, 160, 160]);
  return out;
}

type SetPixel = (x: number, y: number, rgb: ArrayLike<number>) => void;

function blit(set: SetPixel, img: ImageRGB, x0: number, y0: number, scale: number): void {
  for (let y = 0; y < img.height * scale; y++) for (let x = 0; x < img.width * scale; x++) {
    const i = (Math.floor(y / scale) * img.width + Math.floor(x / scale)) * 3;
    set(x0 + x, y0 + y, img.data.subarray(i, i + 3));
  }
}

function drawText(set: SetPixel, text: string, x0: number, y0: number, scale: number): void {
  [...text].forEach((ch, k) => {
    const g = GLYPHS[ch];
    if (!g) throw new Error(`drawText: no glyph for "${ch}"`);
    for (let gy = 0; gy < 7; gy++) for (let gx = 0; gx < 5; gx++) {
      if (g[gy][gx] !== '1') continue;
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) set(x0 + (k * 6 + gx) * scale + dx, y0 + gy * scale + dy, [0, 0, 0]);
    }
  });
}
