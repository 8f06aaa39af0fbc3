/** Copies a checkpoint's LoRA (kohya or PEFT naming) to `<exp>/exports/`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CKPT_FILES, listCheckpoints } from '../ddpo/checkpoint';
import { checkpointName, ddpoLayout } from '../ddpo/layout';
import { withRunLock } from '../experiment/runLock';
import { atomicWriteFile } from '../fsutil';

/** Writes `<exp>/exports/<exp>-epoch-N-<format>.safetensors` holding the experiment's run lock; returns its path and the epoch. */
export async function exportLoraFile(experimentDir: string, format: 'kohya' | 'peft', epoch?: number): Promise<{ file: string; epoch: number }> {
  return withRunLock(experimentDir, 'DDPO Studio LoRA export', () => exportLocked(experimentDir, format, epoch));
}

async function exportLocked(experimentDir: string, format: 'kohya' | 'peft', epoch: number | undefined): Promise<{ file: string; epoch: number }> {
  const ckDir = ddpoLayout(experimentDir).checkpointsDir;
  const epochs = listCheckpoints(ckDir);
  const e = epoch ?? epochs[epochs.length - 1];
  if (e === undefined || !epochs.includes(e)) throw new Error(epochs.length ? `no checkpoint for epoch ${epoch}; available: ${epochs.join(', ')}` : `no checkpoint in ${ckDir} to export; fine-tune first`);
  const src = path.join(ckDir, checkpointName(e), format === 'kohya' ? CKPT_FILES.kohya : CKPT_FILES.peft);
  const out = path.join(experimentDir, 'exports', `${path.basename(experimentDir)}-epoch-${e + 1}-${format}.safetensors`);
  await fs.promises.mkdir(path.dirname(out), { recursive: true });
  await atomicWriteFile(out, await fs.promises.readFile(src));
  return { file: out, epoch: e };
}
