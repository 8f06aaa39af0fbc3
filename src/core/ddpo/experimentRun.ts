/** Runs DDPO on an experiment folder: experiment.json (model, prompts) + ddpo.json (settings). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { embeddedModelDir, experimentModelDir } from '../experiment/modelDir';
import { withRunLock } from '../experiment/runLock';
import { EXPERIMENT_FILE, type Experiment } from '../experiment/schema';
import { readExperiment } from '../experiment/store';
import { parseDdpoConfig, type DdpoConfig } from './config';
import { ddpoLayout } from './layout';
import type { EpochMetrics } from './metrics';
import { makeReward } from './rewards';
import type { RewardScriptGate } from './rewardScript';
import { createOnnxPolicy } from './onnxPolicy';
import { runDdpo, type DdpoRunResult } from './trainer';
import type { DdpoProgress, Policy } from './types';
import type { SessionProviders } from '../runtime/sessionProviders';
import type { Backbone } from '../reward/backbone';

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
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: DdpoProgress) => void;
  /** Called with each epoch's metrics line once it is written. */
  onEpoch?: (m: EpochMetrics) => void;
  onLog?: (line: string) => void;
  /** Providers the policy's sessions try, best first (default CPU only). */
  providers?: SessionProviders;
  /** A policy to train instead of building one from the model folder; the caller keeps it and releases it. */
  policy?: Policy;
  /** The model folder, when the caller has resolved it (the studio's embedded model); else from experiment.json. */
  modelDir?: string;
  /** Lets a `script:` reward run (it is refused without one): the CLI says what it runs, the studio checks the confirmation. */
  approveRewardScript?: RewardScriptGate;
  /** What the experiment's run lock names as its holder while this runs (default "DDPO training"). */
  lockLabel?: string;
  /** Hears the learned reward's backbone once it is open. */
  onBackboneOpened?: (backbone: Backbone) => void;
}

/**
 * The one way from an experiment folder to a DDPO run (a new one or a resumed one): reads ddpo.json and
 * experiment.json, takes the experiment's run lock, builds the reward and the policy (unless one is given), runs the
 * loop and releases what it built and the lock.
 */
export async function trainExperiment(experimentDir: string, o: TrainExperimentOptions = {}): Promise<DdpoRunResult> {
  const log = o.onLog ?? (() => undefined);
  const config = readDdpoConfig(experimentDir, (w) => log(`warning: ${w}`));
  const exp = await readExperiment(experimentDir);
  if (exp.prompts.length === 0) throw new Error(`${path.join(experimentDir, EXPERIMENT_FILE)}: "prompts" is empty; add the prompts to train on`);
  return withRunLock(experimentDir, o.lockLabel ?? 'DDPO training', () => runLocked(experimentDir, exp, config, o, log), log);
}

async function runLocked(experimentDir: string, exp: Experiment, config: DdpoConfig, o: TrainExperimentOptions, log: (line: string) => void): Promise<DdpoRunResult> {
  // the learned reward's backbone opens on the policy's providers, so it runs on the same GPU when one opens it
  const reward = await makeReward(config.reward, experimentDir, o.approveRewardScript, { providers: o.providers, onLog: log, signal: o.signal, onOpened: o.onBackboneOpened });
  try {
    const policy = o.policy ?? (await buildPolicy(o.modelDir ?? experimentModelDir(exp, experimentDir, embeddedModelDir), config, log, o.providers));
    try {
      return await runDdpo({
        config, layout: ddpoLayout(experimentDir), policy, reward, prompts: exp.prompts,
        resume: o.resume, signal: o.signal, onProgress: o.onProgress, onEpoch: o.onEpoch, onLog: log,
      });
    } finally {
      if (!o.policy) await policy.release?.();
    }
  } finally {
    await reward.release?.();
  }
}

async function buildPolicy(modelDir: string, config: DdpoConfig, log: (line: string) => void, providers: SessionProviders | undefined): Promise<Policy> {
  const t0 = Date.now();
  const policy = await createOnnxPolicy(modelDir, config, { onLog: log, providers });
  log(`built sampling and LoRA training sessions for ${modelDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return policy;
}
