/** Finds the embedded tiny model (media/tiny-model) from wherever this code runs: the bundle in dist/ or the sources under tsx. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The folder of the embedded model, searched upwards from `from` (this file's folder by default). */
export function embeddedModelDir(from: string = __dirname): string {
  // dist/cli.js sits one level below the package root, src/core/demo/*.ts three: walk up instead of guessing.
  for (let dir = path.resolve(from), i = 0; i < 8; i++) {
    const candidate = path.join(dir, 'media', 'tiny-model');
    if (fs.existsSync(path.join(candidate, 'model_index.json'))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`cannot find the embedded model media/tiny-model above ${from}; reinstall DDPO Studio, or rebuild it with \`node --import tsx scripts/train-tiny-model.ts --out media/tiny-model\``);
}

/** Throws a clear error when the model folder lacks its UNet (e.g. a checkout before the model was trained). */
export function assertModelPresent(modelDir: string): void {
  const unet = path.join(modelDir, 'unet', 'model.onnx');
  if (!fs.existsSync(unet)) throw new Error(`${unet} is missing; the embedded model is not built. Build it with \`node --import tsx scripts/train-tiny-model.ts --out ${modelDir}\``);
}
