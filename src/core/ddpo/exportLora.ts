/**
 * Exporting a checkpoint's LoRA: its kohya or PEFT safetensors, or the base UNet with the LoRA merged (ONNX, weights
 * in `<out>.data`). An export goes to a new path, or with `force` replaces a file that belongs to no experiment and
 * no model folder; it never writes over an experiment's files or a base model's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { embeddedModelDir, experimentModelDir } from '../experiment/modelDir';
import { EXPERIMENT_FILE } from '../experiment/schema';
import { readExperiment } from '../experiment/store';
import { atomicWriteFile, realpathOrSelf } from '../fsutil';
import type { Model } from '../onnx/ir';
import { loadModel, saveModel } from '../onnx/proto';
import { mergeLora } from '../train/lora';
import { readLora } from '../train/loraFile';
import { CKPT_FILES, listCheckpoints } from './checkpoint';
import { checkpointName, ddpoLayout } from './layout';
import type { TrainingAlgorithm } from '../../protocol';
import { withRunLock } from '../experiment/runLock';

/** What an export writes: the LoRA in kohya or PEFT naming, or the UNet with it merged. */
export type ExportFormat = 'kohya' | 'peft' | 'onnx';

/** ONNX metadata key a merged export carries, so it is never taken for a base model and merged again. */
export const MERGED_LORA_KEY = 'ddpo_studio.merged_lora';

/** The checkpoint to export: epoch `epoch`, or the newest; throws naming the ones there are. */
export function checkpointToExport(experimentDir: string, epoch?: number, algorithm: TrainingAlgorithm = 'ddpo'): { epoch: number; dir: string } {
  const ckDir = ddpoLayout(experimentDir, algorithm).checkpointsDir;
  const epochs = listCheckpoints(ckDir);
  const e = epoch ?? epochs[epochs.length - 1];
  if (e === undefined || !epochs.includes(e)) {
    throw new Error(epochs.length ? `no checkpoint for epoch ${epoch}; available: ${epochs.join(', ')}` : `no checkpoint in ${ckDir}; fine-tune first (\`ddpo train --experiment ${experimentDir}\`)`);
  }
  return { epoch: e, dir: path.join(ckDir, checkpointName(e)) };
}

/** The LoRA file of a checkpoint in kohya or PEFT naming. */
export function checkpointLoraFile(checkpointDir: string, format: 'kohya' | 'peft'): string {
  return path.join(checkpointDir, format === 'kohya' ? CKPT_FILES.kohya : CKPT_FILES.peft);
}

/** Options of {@link exportLora}. */
export interface ExportLoraOptions {
  /** What the experiment's run lock names as its holder while this runs (default "LoRA export"). */
  lockLabel?: string;
  format: ExportFormat;
  out: string;
  epoch?: number;
  /** Whose checkpoint: the DDPO run's (default) or the Diffusion-DPO run's. */
  algorithm?: TrainingAlgorithm;
  /** Replace `out` (and its `.data`) when they exist and lie in no experiment or model folder. */
  force?: boolean;
}

/** Writes a checkpoint's export to `o.out` (and `<out>.data` for onnx); returns the files written and the epoch. */
export async function exportLora(experimentDir: string, o: ExportLoraOptions): Promise<{ files: string[]; epoch: number }> {
  return withRunLock(experimentDir, o.lockLabel ?? 'LoRA export', () => exportLocked(experimentDir, o));
}

async function exportLocked(experimentDir: string, o: ExportLoraOptions): Promise<{ files: string[]; epoch: number }> {
  const ck = checkpointToExport(experimentDir, o.epoch, o.algorithm);
  const out = path.resolve(o.out);
  const files = o.format === 'onnx' ? [out, `${out}.data`] : [out];
  for (const f of files) checkExportTarget(f, o.force === true);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  if (o.format !== 'onnx') {
    await atomicWriteFile(out, await fs.promises.readFile(checkpointLoraFile(ck.dir, o.format)), { replace: o.force === true });
    return { files, epoch: ck.epoch };
  }
  const unetFile = path.join(experimentModelDir(await readExperiment(experimentDir), experimentDir, embeddedModelDir), 'unet', 'model.onnx');
  const base = loadModel(unetFile);
  const merged = alreadyMerged(base);
  if (merged) throw new Error(`the base UNet ${unetFile} already has a LoRA merged into it (${merged}); merging this one too would apply a LoRA twice. Point the experiment's base model at the original model folder`);
  const model = mergeLora(base, readLora(checkpointLoraFile(ck.dir, 'peft')));
  model.metadata[MERGED_LORA_KEY] = JSON.stringify({ experiment: path.basename(experimentDir), epoch: ck.epoch, ...(o.algorithm && o.algorithm !== 'ddpo' ? { algorithm: o.algorithm } : {}) });
  saveModel(model, out, { externalData: path.basename(files[1]), replace: o.force === true });
  return { files, epoch: ck.epoch };
}

/**
 * Refuses an export target that exists (unless `force`), that is a folder, or that lies inside an experiment folder
 * (experiment.json above it) or a model folder (model_index.json or unet/ above it); the error says why.
 */
export function checkExportTarget(file: string, force: boolean): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return; // a new path: nothing to lose
  }
  if (st.isDirectory()) throw new Error(`${file} is a folder; give the path of the file to write`);
  if (!force) throw new Error(`${file} already exists; choose a new path, or pass --force to replace it`);
  const owner = protectedFolderOf(file);
  if (owner) throw new Error(`${file} belongs to ${owner}; an export never replaces an experiment's or a model's files, even with --force: write it to a new path`);
}

// The experiment or model folder a file lies in (its real path, symlinks followed), described for an error.
function protectedFolderOf(file: string): string | undefined {
  let dir = path.dirname(realpathOrSelf(file));
  for (;;) {
    if (fs.existsSync(path.join(dir, EXPERIMENT_FILE))) return `the experiment ${dir} (it has ${EXPERIMENT_FILE})`;
    if (fs.existsSync(path.join(dir, 'model_index.json'))) return `the model folder ${dir} (it has model_index.json)`;
    if (isDir(path.join(dir, 'unet'))) return `the model folder ${dir} (it has unet/)`;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

// How a UNet shows an earlier merge: our metadata, or the initializers mergeLora names `<module>.merged_weight`.
function alreadyMerged(m: Model): string | undefined {
  const meta = m.metadata[MERGED_LORA_KEY];
  if (meta) return `exported by DDPO Studio: ${meta}`;
  const n = [...m.graph.initializers.keys()].filter((k) => k.endsWith('.merged_weight')).length;
  return n ? `${n} weights named *.merged_weight` : undefined;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
