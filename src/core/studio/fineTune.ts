/** Runs (or resumes) an experiment's DDPO fine-tuning with a given model folder, reporting each epoch. */
import { createOnnxPolicy } from '../ddpo/onnxPolicy';
import { readDdpoConfig } from '../ddpo/experimentRun';
import { ddpoLayout } from '../ddpo/layout';
import type { EpochMetrics } from '../ddpo/metrics';
import { makeReward } from '../ddpo/rewards';
import { runDdpo, type DdpoRunResult } from '../ddpo/trainer';
import type { DdpoProgress, Policy } from '../ddpo/types';
import type { SessionProviders } from '../runtime/sessionProviders';
import { readExperimentFile } from './generate';

/** Options of {@link fineTuneExperiment}. */
export interface FineTuneOptions {
  modelDir: string;
  resume: boolean;
  signal?: AbortSignal;
  onProgress?: (p: DdpoProgress) => void;
  onEpoch?: (m: EpochMetrics) => void;
  onLog?: (line: string) => void;
  /** Providers the policy's sessions try, best first (default CPU only). */
  providers?: SessionProviders;
  /** Replaces the ONNX policy (tests). */
  policy?: Policy;
}

/** Loads ddpo.json, the reward and the policy, then runs the loop; the policy is released afterwards. */
export async function fineTuneExperiment(experimentDir: string, o: FineTuneOptions): Promise<DdpoRunResult> {
  const log = o.onLog ?? (() => undefined);
  const config = readDdpoConfig(experimentDir, (w) => log(`warning: ${w}`));
  const exp = readExperimentFile(experimentDir);
  if (exp.prompts.length === 0) throw new Error(`${experimentDir}/experiment.json has no prompts; add the prompts to train on`);
  const reward = await makeReward(config.reward, experimentDir);
  const policy = o.policy ?? (await createOnnxPolicy(o.modelDir, config, { onLog: log, providers: o.providers }));
  try {
    return await runDdpo({ config, layout: ddpoLayout(experimentDir), policy, reward, prompts: exp.prompts, resume: o.resume, signal: o.signal, onProgress: o.onProgress, onEpoch: o.onEpoch, onLog: log });
  } finally {
    await policy.release?.();
  }
}
