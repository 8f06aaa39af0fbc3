/** Fine-tunes an experiment folder with DDPO or Diffusion-DPO: experiment.json (model, prompts) + ddpo.json (settings). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { embeddedModelDir, experimentModelDir } from '../experiment/modelDir';
import { withRunLock } from '../experiment/runLock';
import { EXPERIMENT_FILE, type Experiment } from '../experiment/schema';
import { readExperiment } from '../experiment/store';
import { parseDdpoConfig, settingsFor, type DdpoConfig } from './config';
import { createDpoPolicy } from './dpoPolicy';
import { describePairs, readPreferencePairs } from './dpoPairs';
import { runDiffusionDpo } from './dpoTrainer';
import { ddpoLayout } from './layout';
import type { AnyEpochMetrics } from './metrics';
import { makeReward } from './rewards';
import type { RewardFn } from './types';
import type { RewardScriptGate } from './rewardScript';
import { createOnnxPolicy } from './onnxPolicy';
import type { LoopResult } from './runLoop';
import { runDdpo } from './trainer';
import { isPreferencePolicy, type DdpoProgress, type LoraPolicyBase, type Policy, type PreferencePolicy } from './types';
import type { SessionProviders } from '../runtime/sessionProviders';
import type { Backbone } from '../reward/backbone';
import type { DownloadProgress } from '../models/hubDownload';
import { ALGORITHM_NAMES, type TrainingAlgorithm } from '../../protocol';

/** The settings object of an experiment's `ddpo.json` as written (absent: empty). */
export function readDdpoConfigRaw(experimentDir: string): Record<string, unknown> {
  const file = ddpoLayout(experimentDir).configFile;
  if (!fs.existsSync(file)) return {};
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); fix or delete it`);
  }
}

/** Reads `ddpo.json` (absent: all defaults) and reports warnings through `warn`. */
export function readDdpoConfig(experimentDir: string, warn: (w: string) => void = () => undefined): DdpoConfig {
  const file = ddpoLayout(experimentDir).configFile;
  const { config, warnings } = parseDdpoConfig(readDdpoConfigRaw(experimentDir), file);
  warnings.forEach(warn);
  return config;
}

/** Options of {@link trainExperiment}. */
export interface TrainExperimentOptions {
  /** Which algorithm runs (default: ddpo.json's `algorithm`). */
  algorithm?: TrainingAlgorithm;
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: DdpoProgress) => void;
  /** Called with each epoch's metrics line once it is written (DDPO's or Diffusion-DPO's, see isDpoMetrics). */
  onEpoch?: (m: AnyEpochMetrics) => void;
  onLog?: (line: string) => void;
  /** Providers the policy's sessions try, best first (default CPU only). */
  providers?: SessionProviders;
  /** A policy to train instead of building one from the model folder (a PreferencePolicy for Diffusion-DPO); the caller keeps it and releases it. */
  policy?: Policy | PreferencePolicy;
  /** The model folder, when the caller has resolved it (the studio's embedded model); else from experiment.json. */
  modelDir?: string;
  /** A reward to fine-tune against instead of the one ddpo.json names (measurements); the caller keeps it and releases it. */
  reward?: RewardFn;
  /** Lets a `script:` reward run (it is refused without one): the CLI says what it runs, the studio checks the confirmation. */
  approveRewardScript?: RewardScriptGate;
  /** What the experiment's run lock names as its holder while this runs (default "DDPO training" or "Diffusion-DPO training"). */
  lockLabel?: string;
  /** Hears the learned reward's backbone once it is open. */
  onBackboneOpened?: (backbone: Backbone) => void;
  /** Hears the reward backbone's download, when the reward needs one that is not in the cache (a cleared cache, another machine). */
  onBackboneDownload?: (p: DownloadProgress) => void;
}

/** What a finished (or stopped-early) run of either algorithm did. */
export type TrainRunResult = LoopResult<AnyEpochMetrics> & { algorithm: TrainingAlgorithm };

/**
 * The one way from an experiment folder to a fine-tuning run (a new one or a resumed one) of either algorithm: reads
 * ddpo.json and experiment.json, takes the experiment's run lock, builds what the algorithm needs (DDPO: the reward
 * and the policy; Diffusion-DPO: the policy and the rated pairs) unless a policy is given, runs the loop into the
 * algorithm's run folder, and releases what it built and the lock.
 */
export async function trainExperiment(experimentDir: string, o: TrainExperimentOptions = {}): Promise<TrainRunResult> {
  const log = o.onLog ?? (() => undefined);
  const file = ddpoLayout(experimentDir).configFile;
  const top = readDdpoConfig(experimentDir, (w) => log(`warning: ${w}`));
  const algorithm = o.algorithm ?? top.algorithm;
  const config = settingsFor(top, algorithm, file);
  const exp = await readExperiment(experimentDir);
  if (exp.prompts.length === 0) throw new Error(`${path.join(experimentDir, EXPERIMENT_FILE)}: "prompts" is empty; add the prompts to train on`);
  const label = o.lockLabel ?? `${ALGORITHM_NAMES[algorithm]} training`;
  const run = algorithm === 'ddpo' ? runDdpoLocked : runDpoLocked;
  return { ...(await withRunLock(experimentDir, label, () => run(experimentDir, exp, config, o, log), log)), algorithm };
}

async function runDdpoLocked(experimentDir: string, exp: Experiment, config: DdpoConfig, o: TrainExperimentOptions, log: (line: string) => void): Promise<LoopResult<AnyEpochMetrics>> {
  if (o.policy && isPreferencePolicy(o.policy)) throw new Error('DDPO needs a policy that samples with log-probabilities; the one given trains on rated pairs (Diffusion-DPO)');
  // the learned reward's backbone opens on the policy's providers, so it runs on the same GPU when one opens it
  const reward = o.reward ?? await makeReward(config.reward, experimentDir, o.approveRewardScript, { providers: o.providers, onLog: log, signal: o.signal, onOpened: o.onBackboneOpened, onProgress: o.onBackboneDownload });
  try {
    const policy = (o.policy as Policy | undefined) ?? (await buildPolicy(modelDirOf(experimentDir, exp, o), (d) => createOnnxPolicy(d, config, { onLog: log, providers: o.providers }), log));
    try {
      return await runDdpo({
        config, layout: ddpoLayout(experimentDir), policy, reward, prompts: exp.prompts,
        resume: o.resume, signal: o.signal, onProgress: o.onProgress, onEpoch: o.onEpoch, onLog: log,
      });
    } finally {
      if (!o.policy) await policy.release?.();
    }
  } finally {
    if (!o.reward) await reward.release?.();
  }
}

async function runDpoLocked(experimentDir: string, exp: Experiment, config: DdpoConfig, o: TrainExperimentOptions, log: (line: string) => void): Promise<LoopResult<AnyEpochMetrics>> {
  if (o.policy && !isPreferencePolicy(o.policy)) throw new Error('Diffusion-DPO needs a policy that trains on rated pairs (createDpoPolicy); the one given is a DDPO policy');
  const policy = (o.policy as PreferencePolicy | undefined) ?? (await buildPolicy(modelDirOf(experimentDir, exp, o), (d) => createDpoPolicy(d, config, { onLog: log, providers: o.providers }), log));
  try {
    const pairs = await readPreferencePairs(experimentDir, policy);
    log(describePairs(pairs));
    for (const p of pairs.problems) log(`warning: ${p}`);
    return await runDiffusionDpo({
      config, layout: ddpoLayout(experimentDir, 'diffusion-dpo'), policy, pairs, prompts: exp.prompts,
      resume: o.resume, signal: o.signal, onProgress: o.onProgress, onEpoch: o.onEpoch, onLog: log,
    });
  } finally {
    if (!o.policy) await policy.release?.();
  }
}

function modelDirOf(experimentDir: string, exp: Experiment, o: TrainExperimentOptions): string {
  return o.modelDir ?? experimentModelDir(exp, experimentDir, embeddedModelDir);
}

async function buildPolicy<P extends LoraPolicyBase>(modelDir: string, build: (dir: string) => Promise<P>, log: (line: string) => void): Promise<P> {
  const t0 = Date.now();
  const policy = await build(modelDir);
  log(`built sampling and LoRA training sessions for ${modelDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return policy;
}
