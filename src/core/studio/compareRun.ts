/**
 * Generates a blind comparison: two models (A and B, each the base model or a checkpoint of one of the experiment's
 * runs) on the same held-out prompts and seeds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listCheckpoints, loadCheckpoint } from '../ddpo/checkpoint';
import { settingsFor, type DdpoConfig } from '../ddpo/config';
import { readDdpoConfig } from '../ddpo/experimentRun';
import { checkpointName, ddpoLayout } from '../ddpo/layout';
import { createOnnxPolicy } from '../ddpo/onnxPolicy';
import type { Policy, PolicyState } from '../ddpo/types';
import { withRunLock } from '../experiment/runLock';
import { readExperiment } from '../experiment/store';
import { atomicWriteFile } from '../fsutil';
import type { SessionProviders } from '../runtime/sessionProviders';
import { encodePng } from '../image/png';
import type { CompareSide } from '../../protocol';
import { blindImageName, compareDir, newCompareId, saveManifest, sideLabel, type CompareItem, type CompareManifest } from './compare';

/** Seeds of comparisons start here, far from the seeds training and evaluation draw. */
export const COMPARE_SEED_BASE = 900_000;

/** Options of {@link runComparison}. */
export interface ComparisonOptions {
  modelDir: string;
  /** Model A (default the base model) and model B (default the DDPO checkpoint of `epoch`); the win rate is B's over A. */
  a?: CompareSide;
  b?: CompareSide;
  /** Epoch of the DDPO checkpoint B defaults to; the newest when absent. */
  epoch?: number;
  seedsPerPrompt: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Providers the policy's sessions try, best first (default CPU only). */
  providers?: SessionProviders;
  /** Hears how the policy was built and what a person can act on (a prompt cut to the text encoder's length). */
  onLog?: (line: string) => void;
  /** A policy to render with (its LoRA must be zero, the base model, when given); else one is built per LoRA shape. */
  policy?: Policy;
  /** What the experiment's run lock names as its holder while this runs (default "blind comparison"). */
  lockLabel?: string;
}

/** Renders A's and B's images for every prompt x held-out seed and writes the comparison folder, holding the experiment's run lock. */
export async function runComparison(experimentDir: string, o: ComparisonOptions): Promise<CompareManifest> {
  return withRunLock(experimentDir, o.lockLabel ?? 'blind comparison', () => compareLocked(experimentDir, o));
}

// A side to render: its description, and the settings and LoRA state of its checkpoint (none for the base model).
interface ResolvedSide { side: CompareSide; config?: DdpoConfig; state?: PolicyState }

async function compareLocked(experimentDir: string, o: ComparisonOptions): Promise<CompareManifest> {
  const a = resolveSide(experimentDir, o.a ?? { kind: 'base' });
  const b = resolveSide(experimentDir, o.b ?? { kind: 'checkpoint', algorithm: 'ddpo', epoch: newestDdpoEpoch(experimentDir, o.epoch) });
  if (JSON.stringify(a.side) === JSON.stringify(b.side)) throw new Error(`model A and model B are both ${sideLabel(a.side)}; pick two different ones`);
  // both sides are drawn with the experiment's sampling settings, each with its own LoRA
  const sampling = settingsFor(readDdpoConfig(experimentDir), 'ddpo');
  const { prompts } = await readExperiment(experimentDir);
  const id = newCompareId(a.side, b.side);
  const dir = compareDir(experimentDir, id);
  await fs.promises.mkdir(path.join(dir, 'images'), { recursive: true });
  const jobs = prompts.flatMap((prompt, pi) => Array.from({ length: o.seedsPerPrompt }, (_, k) => ({ prompt, seed: COMPARE_SEED_BASE + pi * 1000 + k })));
  const renderer = new SideRenderer(o, sampling, dir, jobs.length * 2);
  try {
    // a checkpoint first: the base model is then that policy with a zero LoRA, not one more policy
    const images = new Map<ResolvedSide, string[]>();
    for (const side of a.side.kind === 'base' ? [b, a] : [a, b]) images.set(side, await renderer.render(side, jobs));
    const items: CompareItem[] = jobs.map((j, k) => ({ pairId: `cmp-${k}`, prompt: j.prompt, seed: j.seed, a: images.get(a)![k], b: images.get(b)![k] }));
    const manifest: CompareManifest = { id, createdAt: new Date().toISOString(), a: a.side, b: b.side, items };
    await saveManifest(experimentDir, manifest);
    return manifest;
  } finally {
    await renderer.release();
  }
}

function newestDdpoEpoch(experimentDir: string, epoch: number | undefined): number {
  const epochs = listCheckpoints(ddpoLayout(experimentDir).checkpointsDir);
  const e = epoch ?? epochs[epochs.length - 1];
  if (e === undefined) throw new Error(`no checkpoint in ${ddpoLayout(experimentDir).checkpointsDir}; fine-tune for at least one epoch first`);
  return e;
}

// Reads a checkpoint side's settings and LoRA state; names the run's checkpoints when the epoch has none.
function resolveSide(experimentDir: string, side: CompareSide): ResolvedSide {
  if (side.kind === 'base') return { side };
  const layout = ddpoLayout(experimentDir, side.algorithm);
  const epochs = listCheckpoints(layout.checkpointsDir);
  if (!epochs.includes(side.epoch)) {
    throw new Error(epochs.length ? `no checkpoint for epoch ${side.epoch} in ${layout.checkpointsDir} (have ${epochs.join(', ')})` : `no checkpoint in ${layout.checkpointsDir}; fine-tune for at least one epoch first`);
  }
  const ckpt = loadCheckpoint(path.join(layout.checkpointsDir, checkpointName(side.epoch)));
  return { side, config: ckpt.loop.config, state: ckpt.policy };
}

// Renders each side with a policy whose LoRA has that side's shape (rank, alpha, targets): one policy serves every
// side of one shape, the base model being its zero LoRA; a policy the caller gave serves every side.
class SideRenderer {
  private built?: { p: Policy; key: string; zero: PolicyState; own: boolean };
  private done = 0;

  constructor(private readonly o: ComparisonOptions, private readonly sampling: DdpoConfig, private readonly dir: string, private readonly total: number) {}

  async render(s: ResolvedSide, jobs: { prompt: string; seed: number }[]): Promise<string[]> {
    const c = this.sampling;
    const built = await this.policyFor(s.config);
    await built.p.loadState(s.state ?? built.zero);
    const out: string[] = [];
    for (const j of jobs) {
      this.o.signal?.throwIfAborted();
      const r = await built.p.sample({ prompts: [j.prompt], negativePrompt: c.negative_prompts, seed: j.seed, numSteps: c.sample_num_steps, eta: c.sample_eta, guidanceScale: c.sample_guidance_scale, signal: this.o.signal });
      const rel = blindImageName();
      await atomicWriteFile(path.join(this.dir, rel), encodePng({ ...r.images[0], channels: 3 }));
      this.o.onProgress?.(++this.done, this.total);
      out.push(rel);
    }
    return out;
  }

  async release(): Promise<void> {
    if (this.built?.own) await this.built.p.release?.();
    this.built = undefined;
  }

  // `side` undefined: the base model, which any LoRA shape serves
  private async policyFor(side: DdpoConfig | undefined): Promise<{ p: Policy; zero: PolicyState }> {
    const shape = (c: DdpoConfig) => ({ lora_rank: c.lora_rank, lora_alpha: c.lora_alpha, lora_target_modules: c.lora_target_modules });
    const key = JSON.stringify(shape(side ?? this.sampling));
    if (this.built && (this.o.policy || !side || this.built.key === key)) return this.built;
    await this.release();
    const own = !this.o.policy;
    const p = this.o.policy ?? (await createOnnxPolicy(this.o.modelDir, { ...this.sampling, ...(side ? shape(side) : {}) }, { providers: this.o.providers, onLog: this.o.onLog }));
    // a fresh LoRA starts at zero (lora_B = 0): its state is the base model's
    this.built = { p, key, zero: await p.saveState(), own };
    return this.built;
  }
}
