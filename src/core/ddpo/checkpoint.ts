/**
 * Checkpoints: one folder per saved epoch, written in a temp folder and renamed into place, so a
 * kill at any moment leaves either the whole checkpoint or none of it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeSafetensors, readSafetensorsWithMetadata } from '../safetensors';
import type { StatTrackerState } from './advantages';
import type { RunRngState } from './random';
import { renameEarlierSettings, type DdpoConfig } from './config';
import type { PolicyState } from './types';
import { encodeLora, type LoraWeights } from '../train/loraFile';
import { checkpointName } from './layout';
import { crashPoint } from '../crashPoint';
import { fsyncDir, writeFileDurable } from '../fsutil';

/** Checkpoint file names. */
export const CKPT_FILES = { state: 'state.json', training: 'training_state.safetensors', peft: 'lora_peft.safetensors', kohya: 'lora_kohya.safetensors' } as const;

/** The loop's own state after an epoch (everything but the policy's tensors). */
export interface LoopState {
  format: 1;
  /** Last finished epoch (0-based). */
  epoch: number;
  globalStep: number;
  rng: RunRngState;
  statTracker: StatTrackerState | null;
  config: DdpoConfig;
  savedAt: string;
}

/** A checkpoint read back. */
export interface Checkpoint {
  dir: string;
  loop: LoopState;
  policy: PolicyState;
}

// A folder a checkpoint write makes beside its epoch's, named for the epoch and the writing process, so the next prune
// knows whose it is: `tmp`, the new copy being written; `old`, the copy it replaces, stepped aside.
const leftoverName = (kind: 'tmp' | 'old', epoch: number) => `.${kind}-${checkpointName(epoch)}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
// What leftoverName makes: the epoch's folder name and the process id.
const LEFTOVER = /^\.(?:tmp|old)-(epoch-\d+)-(\d+)-/;

/** Writes checkpoint `loop.epoch` under `checkpointsDir` atomically, then keeps only the newest `keep`. */
export async function saveCheckpoint(checkpointsDir: string, loop: LoopState, policy: PolicyState, lora: LoraWeights, keep: number): Promise<string> {
  await fs.promises.mkdir(checkpointsDir, { recursive: true });
  const final = path.join(checkpointsDir, checkpointName(loop.epoch));
  const tmp = path.join(checkpointsDir, leftoverName('tmp', loop.epoch));
  await fs.promises.mkdir(tmp);
  try {
    await writeFileDurable(path.join(tmp, CKPT_FILES.training), encodeSafetensors(policy.tensors, { meta: JSON.stringify(policy.meta) }));
    await writeFileDurable(path.join(tmp, CKPT_FILES.peft), encodeLora(lora, 'peft'));
    await writeFileDurable(path.join(tmp, CKPT_FILES.kohya), encodeLora(lora, 'kohya'));
    // state.json last: its presence marks a complete checkpoint even if a rename is ever not atomic.
    await writeFileDurable(path.join(tmp, CKPT_FILES.state), JSON.stringify(loop, null, 1));
    await fsyncDir(tmp);
    crashPoint('checkpoint-files-written');
    // an epoch saved again (the divergence guard, a rewound run) replaces its folder without a moment when neither
    // copy is in place: the old one steps aside first, and a kill between the renames is repaired by the next prune
    const old = fs.existsSync(final) ? path.join(checkpointsDir, leftoverName('old', loop.epoch)) : undefined;
    if (old) await fs.promises.rename(final, old);
    await fs.promises.rename(tmp, final);
    await fsyncDir(checkpointsDir);
    if (old) await fs.promises.rm(old, { recursive: true, force: true });
  } catch (e) {
    await fs.promises.rm(tmp, { recursive: true, force: true });
    throw new Error(`Could not write checkpoint ${final}: ${(e as Error).message}. Check free disk space; the previous checkpoint is kept.`);
  }
  await pruneCheckpoints(checkpointsDir, keep);
  return final;
}

/** Epochs of the complete checkpoints in `checkpointsDir`, ascending. */
export function listCheckpoints(checkpointsDir: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(checkpointsDir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^epoch-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && fs.existsSync(path.join(checkpointsDir, m[0], CKPT_FILES.state)))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Reads a checkpoint folder; errors name the file that is missing or broken. */
export function loadCheckpoint(dir: string): Checkpoint {
  const stateFile = path.join(dir, CKPT_FILES.state);
  let loop: LoopState;
  try {
    loop = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as LoopState;
  } catch (e) {
    throw new Error(`Checkpoint ${dir} is unusable: cannot read ${CKPT_FILES.state} (${(e as Error).message}); resume from an older checkpoint with resume_from.`);
  }
  if (loop.format !== 1) throw new Error(`Checkpoint ${stateFile} has format ${loop.format}; this version reads format 1`);
  // a checkpoint written before a setting was renamed holds it under its earlier name
  loop.config = renameEarlierSettings(loop.config as unknown as Record<string, unknown>).settings as unknown as DdpoConfig;
  const { tensors, metadata } = readSafetensorsWithMetadata(path.join(dir, CKPT_FILES.training));
  return { dir, loop, policy: { tensors, meta: JSON.parse(metadata.meta ?? '{}') as Record<string, unknown> } };
}

/** The newest complete checkpoint, or undefined when there is none. */
export function latestCheckpoint(checkpointsDir: string): Checkpoint | undefined {
  const epochs = listCheckpoints(checkpointsDir);
  if (epochs.length === 0) return undefined;
  return loadCheckpoint(path.join(checkpointsDir, checkpointName(epochs[epochs.length - 1])));
}

/**
 * Deletes all but the newest `keep` checkpoints, and the temp folders a killed process left behind (one holding the
 * only complete copy of its epoch is put in place instead).
 */
export async function pruneCheckpoints(checkpointsDir: string, keep: number): Promise<void> {
  const epochs = listCheckpoints(checkpointsDir);
  for (const e of epochs.slice(0, Math.max(0, epochs.length - keep))) {
    const dir = path.join(checkpointsDir, checkpointName(e));
    // state.json first: a kill mid-delete must not leave a folder that still looks complete
    await fs.promises.rm(path.join(dir, CKPT_FILES.state), { force: true });
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
  for (const n of await fs.promises.readdir(checkpointsDir)) {
    const left = LEFTOVER.exec(n);
    if (!left || Number(left[2]) === process.pid) continue; // not a leftover, or one this process is writing
    const at = path.join(checkpointsDir, n), final = path.join(checkpointsDir, left[1]);
    // a kill between a replacement's two renames left the epoch only here, complete: put it back
    if (!fs.existsSync(final) && fs.existsSync(path.join(at, CKPT_FILES.state))) await fs.promises.rename(at, final);
    else await fs.promises.rm(at, { recursive: true, force: true });
  }
}
