/** Where a DDPO run keeps its files inside an experiment folder. */
import * as path from 'node:path';
import type { TrainingAlgorithm } from '../../protocol';

/** Settings file of the run (TRL's DDPOConfig keys and this project's). */
export const DDPO_CONFIG_FILE = 'ddpo.json';

/** Paths of one experiment's DDPO run. */
export interface DdpoLayout {
  experimentDir: string;
  /** The algorithm whose run this is; each has its own run folder, so both can train on one experiment's ratings. */
  algorithm: TrainingAlgorithm;
  configFile: string;
  runDir: string;
  metricsFile: string;
  statusFile: string;
  checkpointsDir: string;
  evalDir: string;
}

/** Folder of each algorithm's run inside an experiment. */
export const RUN_DIRS: Readonly<Record<TrainingAlgorithm, string>> = { ddpo: 'ddpo', 'diffusion-dpo': 'diffusion-dpo' };

/**
 * The run's paths: `<experiment>/ddpo.json` and `<experiment>/<run>/{metrics.jsonl,status.json,checkpoints/,eval/}`,
 * `<run>` being `ddpo` for DDPO and `diffusion-dpo` for Diffusion-DPO.
 */
export function ddpoLayout(experimentDir: string, algorithm: TrainingAlgorithm = 'ddpo'): DdpoLayout {
  const runDir = path.join(experimentDir, RUN_DIRS[algorithm]);
  return {
    experimentDir,
    algorithm,
    configFile: path.join(experimentDir, DDPO_CONFIG_FILE),
    runDir,
    metricsFile: path.join(runDir, 'metrics.jsonl'),
    statusFile: path.join(runDir, 'status.json'),
    checkpointsDir: path.join(runDir, 'checkpoints'),
    evalDir: path.join(runDir, 'eval'),
  };
}

/** Folder name of the checkpoint taken after `epoch` (0-based) finished. */
export function checkpointName(epoch: number): string {
  return `epoch-${String(epoch).padStart(6, '0')}`;
}

/** Folder of the evaluation images rendered at the start of `epoch`. */
export function evalDirOf(layout: DdpoLayout, epoch: number): string {
  return path.join(layout.evalDir, checkpointName(epoch));
}
