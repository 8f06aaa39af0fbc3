/** The embedded tiny model as shipped in the extension's media/, and an experiment's model folder from it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { experimentModelDir } from '../../core/experiment/modelDir';
import type { Experiment } from '../../core/experiment/schema';

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
  return experimentModelDir(exp, experimentDir, () => embeddedModelDir(context));
}
