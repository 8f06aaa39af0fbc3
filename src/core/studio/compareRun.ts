/** Generates a blind comparison: the base model and a checkpoint on the same held-out prompts and seeds. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listCheckpoints, loadCheckpoint } from '../ddpo/checkpoint';
import { readDdpoConfig } from '../ddpo/experimentRun';
import { checkpointName, ddpoLayout } from '../ddpo/layout';
import { createOnnxPolicy } from '../ddpo/onnxPolicy';
import type { Policy } from '../ddpo/types';
import { withRunLock } from '../experiment/runLock';
import { readExperiment } from '../experiment/store';
import { atomicWriteFile } from '../fsutil';
import type { SessionProviders } from '../runtime/sessionProviders';
import { encodePng } from '../image/png';
import { blindImageName, compareDir, newCompareId, saveManifest, type CompareItem, type CompareManifest } from './compare';

/** Seeds of comparisons start here, far from the seeds training and evaluation draw. */
export const COMPARE_SEED_BASE = 900_000;

/** Options of {@link runComparison}. */
export interface ComparisonOptions {
  modelDir: string;
  /** Checkpoint epoch; the newest when absent. */
  epoch?: number;
  seedsPerPrompt: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Providers the policy's sessions try, best first (default CPU only). */
  providers?: SessionProviders;
  /** Hears how the policy was built and what a person can act on (a prompt cut to the text encoder's length). */
  onLog?: (line: string) => void;
  policy?: Policy;
  /** What the experiment's run lock names as its holder while this runs (default "blind comparison"). */
  lockLabel?: string;
}

/** Renders base and fine-tuned images for every prompt x held-out seed and writes the comparison folder, holding the experiment's run lock. */
export async function runComparison(experimentDir: string, o: ComparisonOptions): Promise<CompareManifest> {
  return withRunLock(experimentDir, o.lockLabel ?? 'blind comparison', () => compareLocked(experimentDir, o));
}

async function compareLocked(experimentDir: string, o: ComparisonOptions): Promise<CompareManifest> {
  const layout = ddpoLayout(experimentDir);
  const epochs = listCheckpoints(layout.checkpointsDir);
  const epoch = o.epoch ?? epochs[epochs.length - 1];
  if (epoch === undefined || !epochs.includes(epoch)) throw new Error(epochs.length ? `no checkpoint for epoch ${o.epoch} (have ${epochs.join(', ')})` : `no checkpoint in ${layout.checkpointsDir}; fine-tune for at least one epoch first`);
  const config = readDdpoConfig(experimentDir);
  const { prompts } = await readExperiment(experimentDir);
  const id = newCompareId(epoch);
  const dir = compareDir(experimentDir, id);
  await fs.promises.mkdir(path.join(dir, 'images'), { recursive: true });
  const policy = o.policy ?? (await createOnnxPolicy(o.modelDir, config, { providers: o.providers, onLog: o.onLog }));
  const jobs = prompts.flatMap((prompt, pi) => Array.from({ length: o.seedsPerPrompt }, (_, k) => ({ prompt, seed: COMPARE_SEED_BASE + pi * 1000 + k })));
  const total = jobs.length * 2;
  let done = 0;
  const render = async (prompt: string, seed: number): Promise<string> => {
    o.signal?.throwIfAborted();
    const s = await policy.sample({ prompts: [prompt], negativePrompt: config.negative_prompts, seed, numSteps: config.sample_num_steps, eta: config.sample_eta, guidanceScale: config.sample_guidance_scale, signal: o.signal });
    const rel = blindImageName();
    await atomicWriteFile(path.join(dir, rel), encodePng({ ...s.images[0], channels: 3 }));
    o.onProgress?.(++done, total);
    return rel;
  };
  try {
    // A fresh LoRA starts at zero (lora_B = 0), so the policy before loading the checkpoint is the base model.
    const base = [];
    for (const j of jobs) base.push(await render(j.prompt, j.seed));
    await policy.loadState(loadCheckpoint(path.join(layout.checkpointsDir, checkpointName(epoch))).policy);
    const items: CompareItem[] = [];
    for (const [k, j] of jobs.entries()) items.push({ pairId: `cmp-${k}`, prompt: j.prompt, seed: j.seed, base: base[k], tuned: await render(j.prompt, j.seed) });
    const manifest: CompareManifest = { id, epoch, createdAt: new Date().toISOString(), items };
    await saveManifest(experimentDir, manifest);
    return manifest;
  } finally {
    if (!o.policy) await policy.release?.();
  }
}
