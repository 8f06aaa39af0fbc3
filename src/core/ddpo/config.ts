import { isTrainingAlgorithm, TRAINING_ALGORITHMS, type TrainingAlgorithm } from '../../protocol';

/**
 * DDPO settings: every knob of TRL's `DDPOConfig` under its own snake_case name and default, plus the settings this
 * project adds (LoRA shape, reward, evaluation set, speed and safety knobs). Stored as `ddpo.json` in an experiment folder.
 */

/** TRL's DDPOConfig fields: same names, same defaults (but `exp_name` and `log_with`, see DEFAULT_DDPO_CONFIG). */
export interface TrlDdpoSettings {
  exp_name: string;
  run_name: string;
  seed: number;
  log_with: string;
  tracker_kwargs: Record<string, unknown>;
  accelerator_kwargs: Record<string, unknown>;
  project_kwargs: Record<string, unknown>;
  tracker_project_name: string;
  logdir: string;
  num_epochs: number;
  save_freq: number;
  num_checkpoint_limit: number;
  /**
   * 'fp16' (TRL's default): on a GPU provider the UNet's training and sampling graphs compute in float16 (LoRA weights,
   * their gradients, AdamW and the DDPO loss stay float32; dynamic loss scaling). 'no': float32. The CPU always trains
   * in float32; 'bf16' is not offered by onnxruntime's providers here and trains in float32 (with a warning).
   */
  mixed_precision: string;
  /** No meaning here (a CUDA matmul flag of PyTorch). */
  allow_tf32: boolean;
  /** A checkpoint folder (relative to the experiment) the next run rewinds to, once per value (core/ddpo/resume.ts). */
  resume_from: string;
  sample_num_steps: number;
  sample_eta: number;
  sample_guidance_scale: number;
  sample_batch_size: number;
  sample_num_batches_per_epoch: number;
  train_batch_size: number;
  /** No meaning here: AdamW keeps float32 moments. */
  train_use_8bit_adam: boolean;
  train_learning_rate: number;
  train_adam_beta1: number;
  train_adam_beta2: number;
  train_adam_weight_decay: number;
  train_adam_epsilon: number;
  train_gradient_accumulation_steps: number;
  train_max_grad_norm: number;
  /** PPO passes over each epoch's samples. */
  train_num_inner_epochs: number;
  train_cfg: boolean;
  train_adv_clip_max: number;
  train_clip_range: number;
  train_timestep_fraction: number;
  per_prompt_stat_tracking: boolean;
  per_prompt_stat_tracking_buffer_size: number;
  per_prompt_stat_tracking_min_count: number;
  async_reward_computation: boolean;
  max_workers: number;
  negative_prompts: string;
  push_to_hub: boolean;
}

/** The settings this project adds to TRL's. */
export interface ProjectDdpoSettings {
  /** Render and score the fixed evaluation set every N epochs. */
  log_image_freq: number;
  /** LoRA rank and alpha (TRL's pipeline: r=4, lora_alpha=4, on to_q/to_k/to_v/to_out.0). */
  lora_rank: number;
  lora_alpha: number;
  lora_target_modules: string[];
  /**
   * 'jpeg_incompressibility' | 'jpeg_compressibility' | 'learned' (the experiment's reward model) | a built-in prior
   * on the experiment's reward backbone ('aesthetic', 'clip_score', 'shape_taste'; see reward/priors.ts) | 'script:<path>'.
   */
  reward: string;
  /** Fixed evaluation set: these prompts (default: the first 4 training prompts) x these seeds. */
  eval_prompts: string[];
  eval_seeds: number[];
  /** Latent side in pixels of the latent grid (image side / 8 for SD); 0 takes the model's default. */
  latent_size: number;
  /**
   * Which timesteps train_timestep_fraction keeps: 'random' (TRL: a fresh random subset per sample) or 'earliest'
   * (the first, noisiest sampling steps, where an image's layout is decided).
   */
  train_timestep_selection: 'random' | 'earliest';
  /**
   * Speed only: how many of a sample's trained timesteps one training-graph run takes (the graph's batch is
   * train_batch_size x this). The gradient equals that of running them one by one (up to float summation order), as
   * the LoRA weights do not change between them; fewer, larger runs pay where the host's kernel dispatch dominates (a GPU).
   * Must divide the trained timesteps per sample (sample_num_steps x train_timestep_fraction); otherwise its largest
   * divisor below it is used, with a warning. Costs memory like train_batch_size does.
   */
  train_timesteps_per_run: number;
  /**
   * Divergence guard: an epoch's approx_kl spikes when it exceeds this factor times the median of the earlier epochs'
   * (after at least 3) and 1e-5. When two epochs in a row spike, the LoRA and optimizer go back to where the first of
   * them started, that state is checkpointed, and the run stops early; a single spike, which is how a policy that has
   * barely moved starts to learn, is kept. 0 turns it off (TRL has no such guard).
   */
  train_kl_guard: number;
  /**
   * Where PPO's old log-probabilities come from. 'sampler' (TRL): the values recorded while sampling, clipped like
   * any other. 'training_graph': the micro-steps before an epoch's first optimizer step (LoRA still the sampler's)
   * train unclipped and record the training graph's own values; every other transition the epoch trains is scored by
   * the training graph before that update (one more graph run per run after it). 'auto' (default): as
   * 'training_graph', but scoring only once the recorded values differ from the sampler's by more than
   * train_clip_range (float16 sampling and training graphs round differently); in float32 they agree and nothing is scored.
   */
  train_old_log_probs: 'auto' | 'sampler' | 'training_graph';
  /** What `ddpo train` and Start Fine-Tuning run unless told otherwise: 'ddpo' or 'diffusion-dpo' (on the rated pairs, no reward model). */
  algorithm: TrainingAlgorithm;
  /**
   * Diffusion-DPO's β as the official code takes it: the loss is −log σ(−β/2·Δ) with Δ the difference of per-pixel
   * mean squared errors (policy minus reference, winner minus loser); 5000 is its SD 1.5 setting.
   */
  beta_dpo: number;
  /** Settings a Diffusion-DPO run takes instead of the ones above (e.g. its own train_learning_rate, num_epochs), so one ddpo.json serves both algorithms. */
  diffusion_dpo: Record<string, unknown>;
}

/** Every `ddpo.json` setting: TRL's and this project's. */
export interface DdpoConfig extends TrlDdpoSettings, ProjectDdpoSettings {}

// TRL's defaults, except exp_name (TRL: the script's name) and log_with (TRL: None), which have no such value here.
const TRL_DEFAULTS: Readonly<TrlDdpoSettings> = {
  exp_name: 'ddpo',
  run_name: '',
  seed: 0,
  log_with: '',
  tracker_kwargs: {},
  accelerator_kwargs: {},
  project_kwargs: {},
  tracker_project_name: 'trl',
  logdir: 'logs',
  num_epochs: 100,
  save_freq: 1,
  num_checkpoint_limit: 5,
  mixed_precision: 'fp16',
  allow_tf32: true,
  resume_from: '',
  sample_num_steps: 50,
  sample_eta: 1.0,
  sample_guidance_scale: 5.0,
  sample_batch_size: 1,
  sample_num_batches_per_epoch: 2,
  train_batch_size: 1,
  train_use_8bit_adam: false,
  train_learning_rate: 3e-4,
  train_adam_beta1: 0.9,
  train_adam_beta2: 0.999,
  train_adam_weight_decay: 1e-4,
  train_adam_epsilon: 1e-8,
  train_gradient_accumulation_steps: 1,
  train_max_grad_norm: 1.0,
  train_num_inner_epochs: 1,
  train_cfg: true,
  train_adv_clip_max: 5,
  train_clip_range: 1e-4,
  train_timestep_fraction: 1.0,
  per_prompt_stat_tracking: false,
  per_prompt_stat_tracking_buffer_size: 16,
  per_prompt_stat_tracking_min_count: 16,
  async_reward_computation: false,
  max_workers: 2,
  negative_prompts: '',
  push_to_hub: false,
};

const PROJECT_DEFAULTS: Readonly<ProjectDdpoSettings> = {
  log_image_freq: 1,
  lora_rank: 4,
  lora_alpha: 4,
  lora_target_modules: ['to_k', 'to_q', 'to_v', 'to_out.0'],
  reward: 'jpeg_incompressibility',
  eval_prompts: [],
  eval_seeds: [0],
  latent_size: 0,
  train_timestep_selection: 'random',
  train_timesteps_per_run: 1,
  train_kl_guard: 0,
  train_old_log_probs: 'auto',
  algorithm: 'ddpo',
  beta_dpo: 5000,
  diffusion_dpo: {},
};

/** TRL's defaults, and ours for the added keys. */
export const DEFAULT_DDPO_CONFIG: Readonly<DdpoConfig> = Object.freeze({ ...TRL_DEFAULTS, ...PROJECT_DEFAULTS });

/** True for a key of TRL's DDPOConfig, false for a setting this project adds (or an unknown key). */
export function isTrlSetting(key: string): key is keyof TrlDdpoSettings {
  return Object.hasOwn(TRL_DEFAULTS, key);
}

// Keys still read under an earlier name, by that name.
const RENAMED: Readonly<Record<string, keyof DdpoConfig>> = { num_inner_epochs: 'train_num_inner_epochs' };

/**
 * `--set KEY=VALUE` overrides of ddpo.json settings as one object, each value parsed as JSON where it parses (numbers,
 * booleans, lists) and kept as a string otherwise; a pair without a key is an error naming it.
 */
export function parseSettingOverrides(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of pairs) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new Error(`--set expects key=value (a ddpo.json key), got ${JSON.stringify(kv)}`);
    const raw = kv.slice(eq + 1);
    try {
      out[kv.slice(0, eq)] = JSON.parse(raw);
    } catch {
      out[kv.slice(0, eq)] = raw; // a plain string
    }
  }
  return out;
}

/**
 * `settings` with every key of an earlier name under its current one (when both are given, the current one wins),
 * and the earlier names it held; for ddpo.json files and checkpoints written before the rename.
 */
export function renameEarlierSettings(settings: Record<string, unknown>): { settings: Record<string, unknown>; renamed: string[] } {
  const renamed = Object.keys(settings).filter((k) => Object.hasOwn(RENAMED, k));
  if (!renamed.length) return { settings, renamed };
  const out = { ...settings };
  for (const old of renamed) {
    if (!Object.hasOwn(out, RENAMED[old])) out[RENAMED[old]] = out[old];
    delete out[old];
  }
  return { settings: out, renamed };
}

// Knobs kept for compatibility with TRL configs that do nothing on our engine; a non-default value earns a warning.
const NO_EFFECT: Partial<Record<keyof DdpoConfig, string>> = {
  allow_tf32: 'a PyTorch/CUDA matmul flag',
  train_use_8bit_adam: 'AdamW keeps float32 moments',
  accelerator_kwargs: 'there is no accelerate here',
  log_with: 'metrics always go to metrics.jsonl (no wandb/tensorboard)',
  tracker_kwargs: 'metrics always go to metrics.jsonl',
  tracker_project_name: 'metrics always go to metrics.jsonl',
  project_kwargs: 'the experiment folder is the project',
  logdir: 'outputs go to the experiment folder (ddpo/)',
  push_to_hub: 'nothing is uploaded; use `ddpo export-lora`',
};

/** A parsed config and what was suspicious in it. */
export interface ParsedDdpoConfig {
  config: DdpoConfig;
  warnings: string[];
}

/** Merges `raw` over the defaults, checking every type and range; throws naming the key and the file. */
export function parseDdpoConfig(raw: unknown, source = 'ddpo.json'): ParsedDdpoConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: expected a JSON object of DDPO settings`);
  const warnings: string[] = [];
  const { settings, renamed } = renameEarlierSettings(raw as Record<string, unknown>);
  for (const old of renamed) {
    const current = RENAMED[old];
    warnings.push(current in (raw as Record<string, unknown>)
      ? `${source}: "${old}" is the deprecated name of "${current}", which is set too; "${old}" is ignored, delete it`
      : `${source}: "${old}" is deprecated; it is read as "${current}" (TRL's name), rename it`);
  }
  const out: Record<string, unknown> = structuredClone({ ...DEFAULT_DDPO_CONFIG });
  for (const [key, value] of Object.entries(settings)) {
    if (!(key in DEFAULT_DDPO_CONFIG)) {
      warnings.push(`${source}: unknown setting "${key}" is ignored${suggest(key)}`);
      continue;
    }
    const def = (DEFAULT_DDPO_CONFIG as Record<string, unknown>)[key];
    if (!sameKind(def, value)) throw new Error(`${source}: "${key}" must be ${kindOf(def)}, got ${JSON.stringify(value)}`);
    out[key] = structuredClone(value);
    const why = NO_EFFECT[key as keyof DdpoConfig];
    if (why && JSON.stringify(value) !== JSON.stringify(def)) warnings.push(`${source}: "${key}" has no effect here (${why}); value ignored`);
  }
  const config = out as unknown as DdpoConfig;
  validateRanges(config, source);
  const k = timestepsPerRun(config);
  if (k !== config.train_timesteps_per_run) {
    warnings.push(`${source}: "train_timesteps_per_run" ${config.train_timesteps_per_run} does not divide the ${numTrainTimesteps(config)} timesteps trained per sample ` +
      `(sample_num_steps x train_timestep_fraction); each graph run takes ${k}`);
  }
  warnings.push(...checkDpoOverrides(config, source));
  if (config.mixed_precision === 'bf16') warnings.push(`${source}: "mixed_precision" "bf16" is not offered by onnxruntime's providers here; training runs in float32 (use "fp16" on a GPU)`);
  return { config, warnings };
}

// Settings diffusion_dpo cannot override: the choice of algorithm and the overrides themselves.
const NOT_OVERRIDABLE = new Set(['algorithm', 'diffusion_dpo']);

// The overrides must make a valid config of their own (checked now, so a bad one fails before any run starts).
function checkDpoOverrides(c: DdpoConfig, source: string): string[] {
  const bad = Object.keys(c.diffusion_dpo).filter((k) => NOT_OVERRIDABLE.has(k));
  if (bad.length) throw new Error(`${source}: "diffusion_dpo" cannot set ${bad.map((k) => `"${k}"`).join(', ')}; set them at the top level`);
  const keys = Object.keys(c.diffusion_dpo);
  if (keys.length === 0) return [];
  // the top-level settings were warned about already; only what the overrides bring is new
  return parseDdpoConfig({ ...c, diffusion_dpo: {}, ...c.diffusion_dpo, algorithm: 'diffusion-dpo' }, `${source} "diffusion_dpo"`).warnings.filter((w) => keys.some((k) => w.includes(`"${k}"`)));
}

/**
 * The settings a run of `algorithm` takes, checked for it: `algorithm` set to it and, for Diffusion-DPO, the
 * `diffusion_dpo` overrides applied. Throws naming `source` and the key when they do not make a valid run.
 */
export function settingsFor(c: DdpoConfig, algorithm: TrainingAlgorithm, source = 'ddpo.json'): DdpoConfig {
  const overrides = algorithm === 'diffusion-dpo' ? c.diffusion_dpo : {};
  return { ...parseDdpoConfig({ ...c, diffusion_dpo: {}, ...overrides, algorithm }, source).config, diffusion_dpo: c.diffusion_dpo };
}

/** The timesteps trained per sample: int(sample_num_steps * train_timestep_fraction), as TRL computes it. */
export function numTrainTimesteps(c: DdpoConfig): number {
  return Math.floor(c.sample_num_steps * c.train_timestep_fraction);
}

/**
 * Timesteps per training-graph run: the largest divisor of the trained timesteps per sample that is at most
 * train_timesteps_per_run, so a run never spans two samples' batches or two optimizer updates.
 */
export function timestepsPerRun(c: DdpoConfig): number {
  const t = numTrainTimesteps(c);
  // (a config object not made by parseDdpoConfig, e.g. a checkpoint's written without this setting, may lack it: 1)
  let k = Number.isInteger(c.train_timesteps_per_run) ? Math.max(1, Math.min(c.train_timesteps_per_run, t)) : 1;
  while (k > 1 && t % k !== 0) k--;
  return k;
}

function validateRanges(c: DdpoConfig, source: string): void {
  const fail = (key: keyof DdpoConfig, rule: string): never => {
    throw new Error(`${source}: "${key}" ${rule}, got ${JSON.stringify(c[key])}`);
  };
  const posInt: (keyof DdpoConfig)[] = ['num_epochs', 'save_freq', 'num_checkpoint_limit', 'sample_num_steps', 'sample_batch_size',
    'sample_num_batches_per_epoch', 'train_batch_size', 'train_gradient_accumulation_steps', 'train_num_inner_epochs',
    'per_prompt_stat_tracking_buffer_size', 'max_workers', 'log_image_freq', 'lora_rank', 'train_timesteps_per_run'];
  for (const k of posInt) if (!Number.isInteger(c[k]) || (c[k] as number) < 1) fail(k, 'must be a positive integer');
  if (!Number.isInteger(c.per_prompt_stat_tracking_min_count) || c.per_prompt_stat_tracking_min_count < 0) fail('per_prompt_stat_tracking_min_count', 'must be a non-negative integer');
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) fail('seed', 'must be a non-negative integer');
  if (!(c.sample_eta > 0)) fail('sample_eta', 'must be > 0 (DDPO needs stochastic DDIM steps to have log-probabilities)');
  for (const k of ['train_learning_rate', 'train_adam_epsilon', 'train_max_grad_norm', 'train_adv_clip_max', 'train_clip_range', 'lora_alpha'] as const) {
    if (!(c[k] > 0)) fail(k, 'must be > 0');
  }
  if (!Number.isInteger(c.latent_size) || c.latent_size < 0 || c.latent_size % 8 !== 0) fail('latent_size', 'must be 0 (model default) or a multiple of 8 (64 = 512 px for SD 1.x)');
  if (!(c.train_adam_weight_decay >= 0)) fail('train_adam_weight_decay', 'must be >= 0');
  for (const k of ['train_adam_beta1', 'train_adam_beta2'] as const) if (!(c[k] >= 0 && c[k] < 1)) fail(k, 'must be in [0, 1)');
  if (!(c.train_timestep_fraction > 0 && c.train_timestep_fraction <= 1)) fail('train_timestep_fraction', 'must be in (0, 1]');
  if (c.train_timestep_selection !== 'random' && c.train_timestep_selection !== 'earliest') fail('train_timestep_selection', 'must be "random" or "earliest"');
  if (!['auto', 'sampler', 'training_graph'].includes(c.train_old_log_probs)) fail('train_old_log_probs', 'must be "auto", "sampler" or "training_graph"');
  if (!['no', 'fp16', 'bf16'].includes(c.mixed_precision)) fail('mixed_precision', 'must be "no", "fp16" or "bf16"');
  if (!(c.train_kl_guard === 0 || c.train_kl_guard > 1)) fail('train_kl_guard', 'must be 0 (off) or a factor above 1, e.g. 100');
  if (numTrainTimesteps(c) < 1) fail('train_timestep_fraction', `leaves no timestep to train (sample_num_steps ${c.sample_num_steps} x fraction < 1)`);
  // TRL's checks: training batches must tile each sampling batch and the epoch's samples (Diffusion-DPO samples nothing to tile).
  if (c.algorithm === 'ddpo') {
    if (c.sample_batch_size % c.train_batch_size !== 0) fail('train_batch_size', `must divide sample_batch_size (${c.sample_batch_size})`);
    const perEpoch = c.sample_batch_size * c.sample_num_batches_per_epoch;
    if (perEpoch % (c.train_batch_size * c.train_gradient_accumulation_steps) !== 0) {
      fail('train_gradient_accumulation_steps', `x train_batch_size must divide the ${perEpoch} samples per epoch (sample_batch_size x sample_num_batches_per_epoch)`);
    }
  }
  if (!c.eval_seeds.every((s) => Number.isSafeInteger(s) && s >= 0)) fail('eval_seeds', 'must be non-negative integers');
  if (!c.eval_prompts.every((p) => typeof p === 'string')) fail('eval_prompts', 'must be strings');
  if (!c.lora_target_modules.every((p) => typeof p === 'string' && p.length > 0)) fail('lora_target_modules', 'must be module names like "to_q"');
  if (!isTrainingAlgorithm(c.algorithm)) fail('algorithm', `must be one of ${TRAINING_ALGORITHMS.map((a) => `"${a}"`).join(', ')}`);
  if (!(c.beta_dpo > 0)) fail('beta_dpo', 'must be > 0 (5000 is the Diffusion-DPO paper\'s SD 1.5 setting)');
  if (!/^(jpeg_incompressibility|jpeg_compressibility|learned|aesthetic|clip_score|shape_taste|script:.+)$/.test(c.reward)) {
    fail('reward', 'must be "jpeg_incompressibility", "jpeg_compressibility", "learned", "aesthetic", "clip_score", "shape_taste" or "script:<path to .js/.mjs/.ts>"');
  }
}

function sameKind(def: unknown, v: unknown): boolean {
  if (Array.isArray(def)) return Array.isArray(v);
  if (typeof def === 'object' && def !== null) return typeof v === 'object' && v !== null && !Array.isArray(v);
  if (typeof def === 'number') return typeof v === 'number' && Number.isFinite(v);
  return typeof v === typeof def;
}

function kindOf(def: unknown): string {
  if (Array.isArray(def)) return 'an array';
  if (typeof def === 'object') return 'an object';
  return `a ${typeof def}`;
}

function suggest(key: string): string {
  const k = key.toLowerCase().replace(/-/g, '_');
  const hit = Object.keys(DEFAULT_DDPO_CONFIG).find((d) => d === k || d.endsWith(k) || k.endsWith(d));
  return hit ? ` (did you mean "${hit}"?)` : '';
}
