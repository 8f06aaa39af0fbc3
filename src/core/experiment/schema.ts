/** The `experiment.json` format: one experiment's base model, prompts and settings. */

/** Bumped when the file format changes incompatibly; readers refuse newer versions. */
export const EXPERIMENT_SCHEMA_VERSION = 1;

/** File name of an experiment's description inside its folder. */
export const EXPERIMENT_FILE = 'experiment.json';

/** Which diffusion model the experiment fine-tunes: an id, and optionally a local ONNX folder. */
export interface BaseModelRef {
  /** Human-readable id, e.g. "stable-diffusion-v1-5". */
  id: string;
  /** Folder with the diffusers/optimum ONNX layout (unet/, vae_decoder/, text_encoder/, tokenizer/). */
  path?: string;
}

/**
 * The backbone an experiment's reward model embeds images (and prompts) with: `builtin:stats` (the built-in shape
 * features), `embedded:<name>` (a backbone shipped in `media/<name>/`), a Hugging Face Hub repo id, or a folder name
 * with `path`, the local folder in the layout of src/core/models/backboneFolder.ts.
 */
export interface RewardBackboneRef {
  id: string;
  /** The local folder (a Hub download's cache folder, or one the person picked). */
  path?: string;
}

/** `rewardBackbone.id` of the built-in hand-made features (colour histograms, foreground shape). */
export const BUILTIN_BACKBONE_ID = 'builtin:stats';

/** The tiny CLIP shipped in media/tiny-clip/ (image and text towers trained on the shapes world by scripts/train-tiny-clip.ts). */
export const TINY_CLIP_BACKBONE_ID = 'embedded:tiny-clip';

/** The reward backbone of experiments on real models unless they name another: CLIP ViT-L/14, exported for transformers.js. */
export const DEFAULT_CLIP_BACKBONE_ID = 'Xenova/clip-vit-large-patch14';

/** Sampling and training knobs; unknown keys written by newer code are kept as they are. */
export interface ExperimentSettings {
  steps: number;
  guidanceScale: number;
  imageSize: number;
  seed: number;
  [key: string]: unknown;
}

/** The parsed content of `experiment.json`. */
export interface Experiment {
  schemaVersion: number;
  name: string;
  createdAt: string;
  baseModel: BaseModelRef;
  prompts: string[];
  settings: ExperimentSettings;
  /** Absent in experiments older than the choice: the default for their model (see rewardBackboneOf). */
  rewardBackbone?: RewardBackboneRef;
  /** The built-in prior the personal reward head starts from (`aesthetic`, `clip_score`, `shape_taste`); absent: it starts cold. */
  rewardPrior?: string;
}

/** The top-level keys of experiment.json this version reads; any other is a newer version's or a person's own, and kept. */
export const EXPERIMENT_KEYS = ['schemaVersion', 'name', 'createdAt', 'baseModel', 'prompts', 'settings', 'rewardBackbone', 'rewardPrior'] as const satisfies readonly (keyof Experiment)[];

/** Settings a new experiment starts with. */
export const DEFAULT_SETTINGS: ExperimentSettings = { steps: 20, guidanceScale: 7.5, imageSize: 512, seed: 0 };

/** Base model a new experiment refers to when none is given. */
export const DEFAULT_BASE_MODEL: BaseModelRef = { id: 'stable-diffusion-v1-5' };

/** Thrown for an `experiment.json` that cannot be used; `reason` is shown in the tree. */
export class ExperimentFormatError extends Error {
  constructor(readonly file: string, readonly reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'ExperimentFormatError';
  }
}

/** A new experiment's content with defaults filled in. */
export function newExperiment(name: string, opts: { baseModel?: BaseModelRef; prompts?: string[]; settings?: Partial<ExperimentSettings>; rewardBackbone?: RewardBackboneRef; rewardPrior?: string; now?: Date } = {}): Experiment {
  return {
    schemaVersion: EXPERIMENT_SCHEMA_VERSION,
    name,
    createdAt: (opts.now ?? new Date()).toISOString(),
    baseModel: opts.baseModel ?? { ...DEFAULT_BASE_MODEL },
    prompts: opts.prompts ?? [],
    settings: { ...DEFAULT_SETTINGS, ...opts.settings },
    ...(opts.rewardBackbone ? { rewardBackbone: { ...opts.rewardBackbone } } : {}),
    ...(opts.rewardPrior ? { rewardPrior: opts.rewardPrior } : {}),
  };
}

/** Parses and checks `experiment.json` text; throws ExperimentFormatError saying which field is wrong. */
export function parseExperiment(text: string, file: string): Experiment {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ExperimentFormatError(file, `not valid JSON (${(e as Error).message}); fix or delete the file`);
  }
  const fail = (why: string): never => {
    throw new ExperimentFormatError(file, why);
  };
  if (!isObject(raw)) return fail('expected a JSON object');
  const v = raw.schemaVersion;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail('"schemaVersion" must be a positive integer');
  if ((v as number) > EXPERIMENT_SCHEMA_VERSION) fail(`schemaVersion ${v} is newer than this DDPO Studio understands (${EXPERIMENT_SCHEMA_VERSION}); update the extension`);
  if (typeof raw.name !== 'string' || raw.name === '') fail('"name" must be a non-empty string');
  if (typeof raw.createdAt !== 'string') fail('"createdAt" must be an ISO date string');
  const bm = raw.baseModel;
  if (!isObject(bm) || typeof bm.id !== 'string') fail('"baseModel" must be an object with a string "id"');
  if (isObject(bm) && bm.path !== undefined && typeof bm.path !== 'string') fail('"baseModel.path" must be a string');
  if (!Array.isArray(raw.prompts) || !raw.prompts.every((p) => typeof p === 'string')) fail('"prompts" must be an array of strings');
  const rb = raw.rewardBackbone;
  if (rb !== undefined && (!isObject(rb) || typeof rb.id !== 'string' || rb.id === '' || (rb.path !== undefined && typeof rb.path !== 'string'))) {
    fail('"rewardBackbone" must be an object with a non-empty string "id" and optionally a string "path"');
  }
  if (raw.rewardPrior !== undefined && (typeof raw.rewardPrior !== 'string' || raw.rewardPrior === '')) fail('"rewardPrior" must be the name of a built-in prior (aesthetic, clip_score, shape_taste)');
  const s = raw.settings ?? {};
  if (!isObject(s)) return fail('"settings" must be an object');
  for (const key of Object.keys(DEFAULT_SETTINGS)) {
    if (s[key] !== undefined && (typeof s[key] !== 'number' || !Number.isFinite(s[key]))) fail(`"settings.${key}" must be a number`);
  }
  return {
    schemaVersion: v as number,
    name: raw.name as string,
    createdAt: raw.createdAt as string,
    baseModel: { ...(bm as Record<string, unknown>) } as unknown as BaseModelRef,
    prompts: [...(raw.prompts as string[])],
    settings: { ...DEFAULT_SETTINGS, ...s } as ExperimentSettings,
    ...(isObject(rb) ? { rewardBackbone: { ...rb } as unknown as RewardBackboneRef } : {}),
    ...(typeof raw.rewardPrior === 'string' ? { rewardPrior: raw.rewardPrior } : {}),
  };
}

/** Serializes an experiment the way it is stored (stable key order, 2-space indent, final newline). */
export function serializeExperiment(exp: Experiment): string {
  return JSON.stringify(exp, null, 2) + '\n';
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
