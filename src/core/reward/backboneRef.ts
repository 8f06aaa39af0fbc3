/** Which reward backbone an experiment uses, and names for it (no sessions: the extension host reads these too). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { statsBackbone, statsBackboneV1 } from './backbone';
import { EMBEDDED_MODEL_ID, findMediaFolder } from '../experiment/modelDir';
import { BUILTIN_BACKBONE_ID, DEFAULT_CLIP_BACKBONE_ID, type Experiment, type RewardBackboneRef } from '../experiment/schema';

/** `rewardBackbone.id` prefix of backbones shipped with the extension in `media/<name>/`. */
export const EMBEDDED_BACKBONE_PREFIX = 'embedded:';

/** The backbone an experiment names, else the default for its model: the built-in features for the embedded model, CLIP ViT-L/14 otherwise. */
export function rewardBackboneOf(exp: Pick<Experiment, 'baseModel' | 'rewardBackbone'>): RewardBackboneRef {
  if (exp.rewardBackbone) return exp.rewardBackbone;
  return { id: exp.baseModel.id === EMBEDDED_MODEL_ID ? BUILTIN_BACKBONE_ID : DEFAULT_CLIP_BACKBONE_ID };
}

/** True for the ids of the built-in features (`builtin`, `builtin:stats`, and the versioned ids heads record). */
export function isBuiltinBackbone(id: string): boolean {
  return id === 'builtin' || id === BUILTIN_BACKBONE_ID || id === statsBackbone.id || id === statsBackboneV1.id;
}

/** A short name for a backbone choice, for the tree and messages. */
export function describeBackboneRef(ref: RewardBackboneRef): string {
  if (isBuiltinBackbone(ref.id)) return ref.id === statsBackboneV1.id ? statsBackboneV1.label! : statsBackbone.label!;
  if (ref.id.startsWith(EMBEDDED_BACKBONE_PREFIX)) return `embedded ${ref.id.slice(EMBEDDED_BACKBONE_PREFIX.length)}`;
  return ref.id;
}

/** The name of a backbone choice with the folder it is read from, when it names one ("my-clip (/models/clip)"). */
export function describeBackboneChoice(ref: RewardBackboneRef): string {
  return `${describeBackboneRef(ref)}${ref.path ? ` (${ref.path})` : ''}`;
}

/**
 * Whether a reward model trained on `trained` (its card's source) used the backbone `chosen` names: both the built-in
 * features, or the same id from the same folder when both name one (relative folders are taken from `baseDir`).
 */
export function sameBackbone(trained: RewardBackboneRef, chosen: RewardBackboneRef, baseDir = '.'): boolean {
  if (isBuiltinBackbone(trained.id) || isBuiltinBackbone(chosen.id)) return isBuiltinBackbone(trained.id) && isBuiltinBackbone(chosen.id);
  return trained.id === chosen.id && (!trained.path || !chosen.path || path.resolve(baseDir, trained.path) === path.resolve(baseDir, chosen.path));
}

/** The backbone a `--backbone` value names: `builtin`, a Hub repo id, or a local folder or `.onnx` file (which wins over a repo id). */
export function backboneRefFromSpec(spec: string): RewardBackboneRef {
  if (isBuiltinBackbone(spec) || spec.startsWith(EMBEDDED_BACKBONE_PREFIX)) return { id: spec };
  if (fs.existsSync(spec)) return { id: path.basename(path.resolve(spec)), path: path.resolve(spec) };
  return { id: spec };
}

/**
 * The folder a backbone is read from without the Hub: `media/<name>/` of a shipped one, else its `path` resolved from
 * `baseDir` (which may not exist); undefined for the built-in features and a repo id without a path.
 */
export function localBackboneDir(ref: RewardBackboneRef, baseDir = '.'): string | undefined {
  if (ref.id.startsWith(EMBEDDED_BACKBONE_PREFIX)) return embeddedBackboneDir(ref.id.slice(EMBEDDED_BACKBONE_PREFIX.length));
  return ref.path ? path.resolve(baseDir, ref.path) : undefined;
}

/** The folder of a backbone shipped in `media/<name>/`, searched upwards from `from` (this file's folder by default). */
export function embeddedBackboneDir(name: string, from: string = __dirname): string {
  const found = findMediaFolder(name, 'config.json', from);
  if (found) return found;
  throw new Error(`cannot find the embedded reward backbone media/${name} above ${from}; reinstall DDPO Studio, or choose another reward backbone`);
}
