/** Spots generated images that carry no picture (non-finite latents, one flat colour, clipped colours) and names the likely setting. */
import type { RasterImage } from '../image/png';

/** The settings that most often wreck an image, as a generation job was given them. */
export interface SettingsInUse {
  guidance: number;
  eta: number;
  steps: number;
}

/** What is wrong with one generated image, if anything. */
export type ImageDefect = { kind: 'non-finite'; step: number } | { kind: 'flat' } | { kind: 'saturated'; fraction: number };

// Beyond these the sampler's arithmetic overflows or the image saturates; usual values are 1-20 and 0-1.
const GUIDANCE_LIMIT = 50;
const ETA_LIMIT = 10;
// Share of pixel values clipped to pure 0 or 255 beyond which an image is noise pushed out of range, not a picture.
const SATURATED = 0.95;

/** The first defect of image `k` of a batch: latents that went NaN/infinite (at which step), one colour, or clipped colours. */
export function imageDefect(trajectory: readonly Float32Array[], k: number, perImage: number, image: RasterImage): ImageDefect | undefined {
  const step = trajectory.findIndex((x) => !allFinite(x.subarray(k * perImage, (k + 1) * perImage)));
  if (step >= 0) return { kind: 'non-finite', step };
  if (isFlat(image)) return { kind: 'flat' };
  const fraction = clippedFraction(image);
  return fraction >= SATURATED ? { kind: 'saturated', fraction } : undefined;
}

function clippedFraction(img: RasterImage): number {
  let n = 0;
  for (const v of img.data) if (v === 0 || v === 255) n++;
  return n / img.data.length;
}

function allFinite(x: Float32Array): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
}

// Every channel within 2 levels of its first pixel: a single colour, not a picture.
function isFlat(img: RasterImage): boolean {
  const { data, channels } = img;
  for (let i = channels; i < data.length; i++) if (Math.abs(data[i] - data[i % channels]) > 2) return false;
  return true;
}

/** The setting most likely behind a defect, said so a person can change it. */
export function likelyCause(s: SettingsInUse): string {
  if (!(Math.abs(s.guidance) <= GUIDANCE_LIMIT)) return `guidance ${s.guidance} is far outside the usual 1 to 20: lower it`;
  if (!(s.eta <= ETA_LIMIT)) return `eta ${s.eta} is far outside the usual 0 to 1: lower it`;
  return 'the model produced values out of range: try float32 (no float16 UNet), another seed, or check the model files';
}

/** Collects defects over a job: the first of each kind is reported at once, the rest counted in {@link finish}. */
export class DefectReport {
  private readonly counts = new Map<ImageDefect['kind'], number>();
  private images = 0;

  constructor(private readonly settings: SettingsInUse, private readonly warn: (message: string) => void) {}

  /** Records one image (its seed names it in the message). */
  add(seed: number, defect: ImageDefect | undefined): void {
    this.images++;
    if (!defect) return;
    const seen = this.counts.get(defect.kind) ?? 0;
    this.counts.set(defect.kind, seen + 1);
    if (seen) return;
    this.warn(`${describeDefect(seed, defect, this.settings.steps)}; ${likelyCause(this.settings)}`);
  }

  /** Reports how many images had each defect, when more than one did. */
  finish(): void {
    for (const [kind, n] of this.counts) if (n > 1) this.warn(`${n} of ${this.images} images ${SUMMARY[kind]}`);
  }
}

const SUMMARY: Record<ImageDefect['kind'], string> = {
  'non-finite': 'have NaN or infinite latents', flat: 'are a single flat colour', saturated: 'are clipped to pure colours',
};

function describeDefect(seed: number, d: ImageDefect, steps: number): string {
  switch (d.kind) {
    case 'non-finite': return `the latents of seed ${seed} became NaN or infinite at step ${d.step} of ${steps}, so its image is blank`;
    case 'flat': return `the image of seed ${seed} is a single flat colour`;
    case 'saturated': return `the image of seed ${seed} is clipped: ${Math.round(d.fraction * 100)}% of its pixel values are pure 0 or 255`;
  }
}

