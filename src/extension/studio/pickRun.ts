/** Which run (DDPO or Diffusion-DPO) or which model (the base model, a run's checkpoint) a command acts on. */
import * as vscode from 'vscode';
import { listCheckpoints } from '../../core/ddpo/checkpoint';
import { ddpoLayout } from '../../core/ddpo/layout';
import { sideLabel } from '../../core/studio/compare';
import { configuredAlgorithm, hasRun } from '../../core/studio/runState';
import { TRAINING_ALGORITHMS, type CompareSide, type TrainingAlgorithm } from '../../protocol';
import type { PickedExperiment } from './pick';

const DESCRIPTIONS: Readonly<Record<TrainingAlgorithm, { label: string; detail: string }>> = {
  ddpo: { label: 'DDPO', detail: 'Reinforcement learning against the reward model trained on your ratings (train the reward model first); samples new images every epoch.' },
  'diffusion-dpo': { label: 'Diffusion-DPO', detail: 'Learns from your rated pairs directly: no reward model, no sampling while it trains; ties and skips are left out.' },
};

/**
 * The algorithm of the tree node or dashboard the command came from; else, with `existing`, the only run the experiment has (or
 * the person's pick of its runs); else the person's pick, ddpo.json's `algorithm` first.
 */
export async function pickAlgorithm(x: PickedExperiment, title: string, existing: boolean): Promise<TrainingAlgorithm | undefined> {
  if (x.algorithm) return x.algorithm;
  const runs = existing ? TRAINING_ALGORITHMS.filter((a) => hasRun(x.dir, a)) : [...TRAINING_ALGORITHMS];
  if (runs.length <= 1) return runs[0] ?? 'ddpo';
  const preferred = configuredAlgorithm(x.dir);
  const items = [...runs].sort((a, b) => Number(b === preferred) - Number(a === preferred)).map((a) => ({ ...DESCRIPTIONS[a], algorithm: a }));
  return (await vscode.window.showQuickPick(items, { title, placeHolder: 'Which algorithm?', ignoreFocusOut: true }))?.algorithm;
}

/** Tells the person that the experiment `name` (or its run of `algorithm`) has nothing to compare or export yet. */
export function warnNoCheckpoint(name: string, algorithm?: TrainingAlgorithm): void {
  const what = algorithm ? `${name}'s ${DESCRIPTIONS[algorithm].label} run` : name;
  void vscode.window.showWarningMessage(`${what} has no checkpoint yet: fine-tune it first (Start Fine-Tuning).`);
}

/** Every checkpoint of the experiment's runs, newest first per run. */
export function checkpointSides(experimentDir: string): CompareSide[] {
  return TRAINING_ALGORITHMS.flatMap((algorithm) => listCheckpoints(ddpoLayout(experimentDir, algorithm).checkpointsDir).reverse().map((epoch): CompareSide => ({ kind: 'checkpoint', algorithm, epoch })));
}

/** Asks for a model among `sides` (the base model first when `withBase`), leaving out `except`. */
export async function pickSide(sides: CompareSide[], title: string, withBase: boolean, except?: CompareSide): Promise<CompareSide | undefined> {
  const all: CompareSide[] = [...(withBase ? [{ kind: 'base' } as const] : []), ...sides].filter((s) => JSON.stringify(s) !== JSON.stringify(except));
  if (all.length === 0) return undefined;
  const items = all.map((side) => ({ label: sideLabel(side), description: side.kind === 'base' ? 'no LoRA' : undefined, side }));
  return (await vscode.window.showQuickPick(items, { title, placeHolder: 'Which model?', ignoreFocusOut: true }))?.side;
}
