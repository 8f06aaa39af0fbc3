/** Runs DDPO on an experiment folder: experiment.json (model, prompts) + ddpo.json (settings). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXPERIMENT_FILE, parseExperiment } from '../experiment/schema';
import { parseDdpoConfig, type DdpoConfig } from './config';
import { ddpoLayout } from './layout';
import { makeReward } from './rewards';
import { createOnnxPolicy } from './onnxPolicy';
import { runDdpo, type DdpoRunResult } from './trainer';
import type { DdpoProgress, Policy } from './types';
import type { SessionProviders } from '../runtime/sessionProviders';

/** Reads `ddpo.json` (absent: all defaults) and reports warnings through `warn`. */
export function readDdpoConfig(experimentDir: string, warn: (w: string) => void = () => undefined): DdpoConfig {
  const file = ddpoLayout(experimentDir).configFile;
  let raw: unknown = {};
  if (fs.existsSync(file)) {
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file} is not valid JSON (${(e as Error).message}); fix or delete it`);
    }
  }
  const { config, warnings } = parseDdpoConfig(raw, file);
  warnings.forEach(warn);
  return config;
}

/** The experiment's model folder and prompts, with errors that say what to add. */
export function readExperimentInputs(experimentDir: string): { modelDir: string; prompts: string[] } {
  const file = path.join(experimentDir, EXPERIMENT_FILE);
  if (!fs.existsSync(file)) throw new Error(`${experimentDir} has no ${EXPERIMENT_FILE}; create the experiment with \`ddpo experiments new\``);
  const exp = parseExperiment(fs.readFileSync(file, 'utf8'), file);
  if (!exp.baseModel.path) throw new Error(`${file}: "baseModel.path" is not set; point it at a Stable Diffusion ONNX folder (unet/, text_encoder/, vae_decoder/, tokenizer/, scheduler/)`);
  if (exp.prompts.length === 0) throw new Error(`${file}: "prompts" is empty; add the prompts to train on`);
  return { modelDir: path.resolve(experimentDir, exp.baseModel.path), prompts: exp.prompts };
}

/** Options of {@link trainExperiment}. */
export interface TrainExperimentOptions {
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: DdpoProgress) => void;
  onLog?: (line: string) => void;
  /** Providers the policy's sessions try, best first (default CPU only). */
  providers?: SessionProviders;
  /** Replaces the ONNX policy (tests). */
  policy?: Policy;
}

/** Loads settings, reward and policy, then runs the loop; releases the policy afterwards. */
export async function trainExperiment(experimentDir: string, o: TrainExperimentOptions = {}): Promise<DdpoRunResult> {
  const log = o.onLog ?? (() => undefined);
  const config = readDdpoConfig(experimentDir, (w) => log(`warning: ${w}`));
  const { modelDir, prompts } = readExperimentInputs(experimentDir);
  const reward = await makeReward(config.reward, experimentDir);
  const t0 = Date.now();
  const policy = o.policy ?? (await createOnnxPolicy(modelDir, config, { onLog: log, providers: o.providers }));
  if (!o.policy) log(`built sampling and LoRA training sessions for ${modelDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    return await runDdpo({ config, layout: ddpoLayout(experimentDir), policy, reward, prompts, resume: o.resume, signal: o.signal, onProgress: o.onProgress, onLog: log });
  } finally {
    await policy.release?.();
  }
}
