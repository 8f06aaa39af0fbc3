/**
 * Test inputs that live outside the test files (the shared reference fixtures, the embedded tiny model, ImageMagick)
 * and the one rule for when one is missing: a local run skips the tests that need it and says why; CI (`CI=true`)
 * fails them, because CI must have every input but a GPU. A skip CI accepts says so with its reason's first words,
 * "needs a GPU" (scripts/test.mjs fails a CI run on any other skip).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Where the shared reference fixtures live: `<repo>/../shared/fixtures` (a fresh clone has none; CI does). */
export const fixturesDir = resolve(__dirname, '../../../shared/fixtures');

/** A path inside the shared fixtures, e.g. `fixture('reference-sd/unet/model.onnx')`. */
export const fixture = (rel: string): string => resolve(fixturesDir, rel);

/** The reference Stable Diffusion folder of the fixtures (its PyTorch oracles beside each model). */
export const referenceSd = fixture('reference-sd');

/** The embedded tiny model the product ships (media/tiny-model). */
export const tinyModelDir = resolve(__dirname, '../../media/tiny-model');

/** Whether this run is CI's: there a missing input fails its tests instead of skipping them. */
export const inCi = process.env.CI === 'true';

/**
 * The `skip` option of a test that needs an input: false when `present`; otherwise `reason` (with what to do), and
 * in CI an Error thrown while the test file loads, so the whole file fails and names what is missing.
 */
export function requireInput(present: boolean, reason: string): false | string {
  if (present) return false;
  if (inCi) throw new Error(`CI=true, but ${reason}. CI must provide every test input but a GPU (see .ci/run); outside CI these tests are skipped.`);
  return reason;
}

/** The `skip` option of a test that needs `rel` inside the shared fixtures (default: the reference SD folder). */
export function needsFixture(rel = 'reference-sd'): false | string {
  const file = fixture(rel);
  return requireInput(existsSync(file), `the shared fixtures are missing (${file} not found; they live in ../shared/fixtures beside the repository)`);
}

/** The `skip` option of a test that needs the embedded tiny model. */
export function needsTinyModel(): false | string {
  const unet = join(tinyModelDir, 'unet', 'model.onnx');
  return requireInput(existsSync(unet), `the embedded tiny model is missing (${unet} not found; scripts/train-tiny-model.ts builds it)`);
}

/** The embedded tiny CLIP the product ships (media/tiny-clip), a reward backbone. */
export const tinyClipDir = resolve(__dirname, '../../media/tiny-clip');

/** The `skip` option of a test that needs the embedded tiny CLIP. */
export function needsTinyClip(): false | string {
  const vision = join(tinyClipDir, 'onnx', 'vision_model.onnx');
  return requireInput(existsSync(vision), `the embedded tiny CLIP is missing (${vision} not found; scripts/train-tiny-clip.ts builds it)`);
}
