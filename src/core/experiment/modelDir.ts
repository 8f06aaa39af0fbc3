/** Where an experiment's model folder is: the embedded tiny model (media/tiny-model) or `baseModel.path`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXPERIMENT_FILE, type Experiment } from './schema';

/** `baseModel.id` of experiments made with the embedded model; its folder is found at run time. */
export const EMBEDDED_MODEL_ID = 'embedded:tiny-shapes';

/** The shipped folder `media/<name>/` holding `marker`, searched upwards from `from`; undefined when there is none. */
export function findMediaFolder(name: string, marker: string, from: string): string | undefined {
  // dist/cli.js sits one level below the package root, src/core/experiment/*.ts three: walk up instead of guessing.
  for (let dir = path.resolve(from), i = 0; i < 8; i++) {
    const candidate = path.join(dir, 'media', name);
    if (fs.existsSync(path.join(candidate, marker))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** The folder of the embedded model, searched upwards from `from` (this file's folder by default). */
export function embeddedModelDir(from: string = __dirname): string {
  const found = findMediaFolder('tiny-model', 'model_index.json', from);
  if (found) return found;
  throw new Error(`cannot find the embedded model media/tiny-model above ${from}; reinstall DDPO Studio, or rebuild it with \`node --import tsx scripts/train-tiny-model.ts --out media/tiny-model\``);
}

/** Throws a clear error when the model folder lacks its UNet (e.g. a checkout before the model was trained). */
export function assertModelPresent(modelDir: string): void {
  const unet = path.join(modelDir, 'unet', 'model.onnx');
  if (!fs.existsSync(unet)) throw new Error(`${unet} is missing; the embedded model is not built. Build it with \`node --import tsx scripts/train-tiny-model.ts --out ${modelDir}\``);
}

/**
 * The model folder an experiment runs with: the embedded folder (asked of `embeddedDir` only then) for the embedded
 * model's id, else `baseModel.path` resolved against the experiment folder; throws naming the file and field to fix.
 */
export function experimentModelDir(exp: Experiment, experimentDir: string, embeddedDir: () => string): string {
  // The extension's folder moves with every update, so an embedded experiment's stored path is never trusted.
  if (exp.baseModel.id === EMBEDDED_MODEL_ID) return embeddedDir();
  const file = path.join(experimentDir, EXPERIMENT_FILE);
  const hint = `point it at a Stable Diffusion ONNX folder (unet/, text_encoder/, vae_decoder/, tokenizer/, scheduler/) or set "baseModel.id" to "${EMBEDDED_MODEL_ID}"`;
  if (!exp.baseModel.path) throw new Error(`${file}: "baseModel.path" is not set; ${hint}`);
  const dir = path.resolve(experimentDir, exp.baseModel.path);
  if (!fs.existsSync(dir)) throw new Error(`${file}: "baseModel.path" names ${dir}, which does not exist; ${hint}`);
  return dir;
}
