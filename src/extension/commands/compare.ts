/** Blind comparisons from the studio: a checkpoint against the base model, or any two models (DDPO vs Diffusion-DPO). */
import * as vscode from 'vscode';
import { compareLabel, compareResult, listComparisons, sideLabel } from '../../core/studio/compare';
import { hasRun } from '../../core/studio/runState';
import { formatWinRate } from '../../core/studio/summary';
import type { CompareSide } from '../../protocol';
import { openRatingPanel } from '../panels/ratingPanel';
import type { Services } from '../services';
import { executionProviderSetting } from '../settings';
import { pickExperiment, type PickedExperiment } from '../studio/pick';
import { checkpointSides, pickAlgorithm, pickSide, warnNoCheckpoint } from '../studio/pickRun';
import { modelDir } from './studio';

/** "Compare with Base Model": a checkpoint (the tree row's, else the newest of a run) against the base model. */
export async function compareWithBase(services: Services, arg?: unknown): Promise<void> {
  const x = await pickExperiment(arg, 'Compare which experiment\'s checkpoint with its base model?');
  if (!x) return;
  const b = await checkpointOf(x);
  if (b) await renderAndRate(services, x, { kind: 'base' }, b);
}

/** "Compare Two Models": model B (the tree row's checkpoint, else asked) against model A (asked: the base model or any other checkpoint). */
export async function compareModels(services: Services, arg?: unknown): Promise<void> {
  const x = await pickExperiment(arg, 'Compare two models of which experiment?');
  if (!x) return;
  const sides = checkpointSides(x.dir);
  if (sides.length === 0) return warnNoCheckpoint(x.name);
  const fromNode = x.node?.kind === 'checkpoint' && x.node.algorithm && x.node.epoch !== undefined ? { kind: 'checkpoint' as const, algorithm: x.node.algorithm, epoch: x.node.epoch } : undefined;
  const b = fromNode ?? (await pickSide(sides, `Model B: which model of ${x.name} do you want to judge?`, false));
  if (!b) return;
  const a = await pickSide(sides, `Model A: compare ${sideLabel(b)} against`, true, b);
  if (a) await renderAndRate(services, x, a, b);
}

/** Opens an existing comparison (tree row) for rating, or shows its result when it is complete. */
export async function openComparison(services: Services, arg?: unknown): Promise<void> {
  const x = await pickExperiment(arg, 'Open a comparison of which experiment?');
  if (!x) return;
  const all = listComparisons(x.dir);
  const m = all.find((c) => c.id === x.node?.compareId) ?? all.at(-1);
  if (!m) return void vscode.window.showInformationMessage(`${x.name} has no blind comparison yet: run "Compare with Base Model".`);
  const res = compareResult(x.dir, m);
  if (res.rated >= res.total) void vscode.window.showInformationMessage(`${res.label}: win rate ${formatWinRate(res.winRate)}.`);
  openRatingPanel(services, { mode: 'compare', experiment: x.name, experimentDir: x.dir, compareId: m.id, target: m.items.length });
}

// The tree row's checkpoint, else the newest checkpoint of the run the person picks (the only run, when there is one).
async function checkpointOf(x: PickedExperiment): Promise<CompareSide | undefined> {
  const n = x.node;
  if (n?.kind === 'checkpoint' && n.algorithm && n.epoch !== undefined) return { kind: 'checkpoint', algorithm: n.algorithm, epoch: n.epoch };
  const algorithm = await pickAlgorithm(x, `Compare the newest checkpoint of which run of ${x.name}?`, true);
  if (!algorithm) return undefined; // the pick was closed
  const newest = checkpointSides(x.dir).find((s) => s.kind === 'checkpoint' && s.algorithm === algorithm);
  if (!newest) warnNoCheckpoint(x.name, hasRun(x.dir, algorithm) ? algorithm : undefined);
  return newest;
}

// Renders A's and B's images in the worker, then opens the comparison in the rating panel.
async function renderAndRate(services: Services, x: PickedExperiment, a: CompareSide, b: CompareSide): Promise<void> {
  const dir = modelDir(services, x);
  if (!dir) return;
  try {
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DDPO Studio: rendering ${compareLabel({ a, b })} of ${x.name}`, cancellable: true }, (progress, token) => {
      const ctl = new AbortController();
      token.onCancellationRequested(() => ctl.abort());
      return services.worker.request('compare', { experimentDir: x.dir, modelDir: dir, a, b, seedsPerPrompt: 2, executionProvider: executionProviderSetting() }, { signal: ctl.signal, onProgress: (p) => progress.report({ message: p.message }) });
    });
    openRatingPanel(services, { mode: 'compare', experiment: x.name, experimentDir: x.dir, compareId: r.compareId, target: r.pairs });
  } catch (e) {
    void vscode.window.showErrorMessage(`Could not render the comparison for ${x.name}: ${(e as Error).message}`);
  }
}
