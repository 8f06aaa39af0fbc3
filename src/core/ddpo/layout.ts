/** Where a DDPO run keeps its files inside an experiment folder. */
import * as path from 'node:path';

/** Settings file of the run (TRL's DDPOConfig keys and this project's). */
export const DDPO_CONFIG_FILE = 'ddpo.json';

/** Paths of one experiment's DDPO run. */
export interface DdpoLayout {
  experimentDir: string;
  configFile: string;
  runDir: string;
  metricsFile: string;
  statusFile: string;
  checkpointsDir: string;
  evalDir: string;
}

/** The run's paths: `<experiment>/ddpo.json` and `<experiment>/ddpo/{metrics.jsonl,status.json,checkpoints/,eval/}`. */
export function ddpoLayout(experimentDir: string): DdpoLayout {
  const runDir = path.join(experimentDir, 'ddpo');
  return {
    experimentDir,
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
