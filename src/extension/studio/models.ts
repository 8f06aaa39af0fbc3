/** Where an experiment's model folder is: the embedded tiny model (shipped in media/), or a folder on disk. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import type { Experiment } from '../../core/experiment/schema';

import { EMBEDDED_MODEL_ID } from '../../core/studio/presets';

export { EMBEDDED_MODEL_ID };

/** The embedded model folder (DDPO_STUDIO_EMBEDDED_MODEL overrides it, for development against other models). */
export function embeddedModelDir(context: vscode.ExtensionContext): string {
  return process.env.DDPO_STUDIO_EMBEDDED_MODEL || path.join(context.extensionPath, 'media', 'tiny-model');
}

/** True when the embedded model is present (it is in every packaged build). */
export function hasEmbeddedModel(context: vscode.ExtensionContext): boolean {
  return fs.existsSync(path.join(embeddedModelDir(context), 'model_index.json'));
}

/** The model folder to run an experiment with; throws saying what to set when there is none. */
export function modelDirOf(context: vscode.ExtensionContext, exp: Experiment, experimentDir: string): string {
  // The extension folder moves on every update, so embedded experiments always take today's path.
  if (exp.baseModel.id === EMBEDDED_MODEL_ID) return embeddedModelDir(context);
  if (!exp.baseModel.path) throw new Error(`Experiment "${exp.name}" has no model folder: set "baseModel.path" in its experiment.json to a Stable Diffusion ONNX folder.`);
  const dir = path.resolve(experimentDir, exp.baseModel.path);
  if (!fs.existsSync(dir)) throw new Error(`The model folder of "${exp.name}" (${dir}) does not exist; fix "baseModel.path" in its experiment.json.`);
  return dir;
}
