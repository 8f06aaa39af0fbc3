/** Opening a reward backbone by name: the built-in features, a shipped one, a folder, or a Hub repo (from the cache or downloaded). */
import * as fs from 'node:fs';
import { statsBackbone, statsBackboneV1, type Backbone } from './backbone';
import { backboneRefFromSpec, EMBEDDED_BACKBONE_PREFIX, isBuiltinBackbone, localBackboneDir } from './backboneRef';
import { loadOnnxBackbone, type OnnxBackboneOptions } from './onnxBackbone';
import { BUILTIN_BACKBONE_ID, EXPERIMENT_FILE, type RewardBackboneRef } from '../experiment/schema';
import { BACKBONE_REPO, cachedModelDir, defaultModelCacheDir, downloadModel, isCompleteDownload, isHubRepoId, type DownloadProgress } from '../models/hubDownload';

/** Options of {@link openBackbone}: where its sessions run, and how a Hub repo is fetched. */
export interface OpenBackboneOptions extends Omit<OnnxBackboneOptions, 'source'> {
  /** Hub cache folder (default ~/.cache/ddpo-studio/models, as for base models). */
  cacheDir?: string;
  /** Never download: a repo not in the cache is an error. */
  offline?: boolean;
  /** Access token for gated repos (default `$HF_TOKEN`). */
  token?: string;
  /** Hub endpoint (default `$HF_ENDPOINT`, else https://huggingface.co). */
  baseUrl?: string;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  /** Folder a relative `path` is taken from (an experiment's folder). */
  baseDir?: string;
  /** The experiment.json a missing backbone is fixed in, for messages. */
  experimentFile?: string;
  /** Hears each backbone once it is open (the worker names the last one in its status). */
  onOpened?: (backbone: Backbone) => void;
}

/**
 * Opens a reward backbone: the built-in features, `embedded:<name>` (media/<name>/), a folder (`path`, or a local
 * `--backbone` path), or a Hub repo id from the cache or downloaded. A repo that is neither cached nor reachable is an
 * error naming it and how to point at a local copy; nothing falls back to the built-in features.
 */
export async function openBackbone(spec: string | RewardBackboneRef | undefined, o: OpenBackboneOptions = {}): Promise<Backbone> {
  const backbone = await openNamed(spec === undefined ? { id: BUILTIN_BACKBONE_ID } : typeof spec === 'string' ? backboneRefFromSpec(spec) : spec, o);
  o.onOpened?.(backbone);
  return backbone;
}

async function openNamed(ref: RewardBackboneRef, o: OpenBackboneOptions): Promise<Backbone> {
  if (isBuiltinBackbone(ref.id)) return ref.id === statsBackboneV1.id ? statsBackboneV1 : statsBackbone;
  const load = (dir: string, source: RewardBackboneRef) => loadOnnxBackbone(dir, { ...o, source });
  const local = localBackboneDir(ref, o.baseDir);
  if (ref.id.startsWith(EMBEDDED_BACKBONE_PREFIX)) return load(local!, { id: ref.id });
  if (local) {
    if (fs.existsSync(local)) return load(local, { id: ref.id, path: local });
    if (!isHubRepoId(ref.id)) throw new Error(`reward backbone ${ref.id}: its folder ${local} does not exist; ${fixHint(ref.id, o)}`);
  }
  if (!isHubRepoId(ref.id)) throw new Error(`reward backbone "${ref.id}" is not a local folder, a Hugging Face repo id (owner/name) or builtin; ${fixHint(ref.id, o)}`);
  const dir = await hubBackboneDir(ref.id, o);
  return load(dir, { id: ref.id, path: dir });
}

// The cache folder of a Hub backbone, downloaded first unless it is complete there.
async function hubBackboneDir(repo: string, o: OpenBackboneOptions): Promise<string> {
  const cacheDir = o.cacheDir ?? defaultModelCacheDir();
  const dir = cachedModelDir(cacheDir, repo);
  if (isCompleteDownload(dir, BACKBONE_REPO)) return dir;
  const absent = `The reward backbone ${repo} is not downloaded (no complete copy in ${dir})`;
  if (o.offline) throw new Error(`${absent} and downloads are off (offline). ${fixHint(repo, o)}`);
  o.onLog?.(`downloading the reward backbone ${repo} into ${dir}`);
  try {
    return await downloadModel({ repo, cacheDir, layout: BACKBONE_REPO, token: o.token ?? process.env.HF_TOKEN, baseUrl: o.baseUrl, signal: o.signal, onProgress: o.onProgress });
  } catch (e) {
    if (o.signal?.aborted) throw e;
    throw new Error(`${absent} and could not be fetched from the Hub: ${(e as Error).message}. ${fixHint(repo, o)}`, { cause: e });
  }
}

// How to point an experiment at a local copy of a backbone.
function fixHint(id: string, o: OpenBackboneOptions): string {
  const where = o.experimentFile ?? EXPERIMENT_FILE;
  return `Connect to the Hub once to download ${isHubRepoId(id) ? id : 'it'}, or point at a local copy (a folder with onnx/vision_model.onnx, ` +
    `onnx/text_model.onnx and tokenizer.json): set "rewardBackbone": { "id": "${id}", "path": "/path/to/folder" } in ${where}, ` +
    'or pass `ddpo reward train --backbone /path/to/folder`';
}
