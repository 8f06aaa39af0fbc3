/** Copies a checkpoint's LoRA (kohya or PEFT naming) to `<exp>/exports/`, never over an earlier export. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkpointLoraFile, checkpointToExport } from '../ddpo/exportLora';
import { withRunLock } from '../experiment/runLock';
import { atomicWriteFile } from '../fsutil';
import type { TrainingAlgorithm } from '../../protocol';

/** Exports of one name tried before giving up (`-2` … `-N` after the plain name). */
const MAX_SAME_NAME = 1000;

/**
 * Writes `<exp>/exports/<exp>-epoch-N-<format>.safetensors` (`<exp>-dpo-epoch-N-…` for a Diffusion-DPO checkpoint), or `…-2.safetensors` and so on when that name is
 * taken (the first free name is claimed atomically), holding the experiment's run lock; returns its path and the epoch.
 */
export async function exportLoraFile(experimentDir: string, format: 'kohya' | 'peft', epoch?: number, algorithm: TrainingAlgorithm = 'ddpo'): Promise<{ file: string; epoch: number }> {
  return withRunLock(experimentDir, 'DDPO Studio LoRA export', () => exportLocked(experimentDir, format, epoch, algorithm));
}

async function exportLocked(experimentDir: string, format: 'kohya' | 'peft', epoch: number | undefined, algorithm: TrainingAlgorithm): Promise<{ file: string; epoch: number }> {
  const ck = checkpointToExport(experimentDir, epoch, algorithm);
  const bytes = await fs.promises.readFile(checkpointLoraFile(ck.dir, format));
  const dir = path.join(experimentDir, 'exports');
  await fs.promises.mkdir(dir, { recursive: true });
  const stem = `${path.basename(experimentDir)}${algorithm === 'ddpo' ? '' : '-dpo'}-epoch-${ck.epoch + 1}-${format}`;
  for (let k = 1; k <= MAX_SAME_NAME; k++) {
    const file = path.join(dir, `${stem}${k === 1 ? '' : `-${k}`}.safetensors`);
    try {
      await atomicWriteFile(file, bytes, { replace: false });
      return { file, epoch: ck.epoch };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  throw new Error(`${dir} already holds ${MAX_SAME_NAME} exports named ${stem}*; delete some and export again`);
}
