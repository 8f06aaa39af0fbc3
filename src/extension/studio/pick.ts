/** Resolves a command's argument (a tree node, a name, or nothing: ask) to an experiment. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Experiment } from '../../core/experiment/schema';
import type { StudioNode } from '../../core/studio/treeModel';
import { isTrainingAlgorithm, type TrainingAlgorithm } from '../../protocol';
import { requireStore } from '../workspaceStore';

/** An experiment a command acts on. */
export interface PickedExperiment {
  name: string;
  dir: string;
  experiment: Experiment;
  /** The tree node the command was invoked on, if any. */
  node?: StudioNode;
  /** The run the command is for, when its argument names one (a run or checkpoint row, or a dashboard's {@link RunArg}). */
  algorithm?: TrainingAlgorithm;
}

/** What a dashboard passes a command: its experiment and the run it shows, so the command acts on that run without asking. */
export interface RunArg {
  experiment: string;
  algorithm: TrainingAlgorithm;
}

/** A tree node, a {@link RunArg}, an experiment name or folder path; undefined asks with a quick pick. */
export async function pickExperiment(arg: unknown, title: string): Promise<PickedExperiment | undefined> {
  const store = requireStore();
  if (!store) return undefined;
  let name: string | undefined;
  let node: StudioNode | undefined;
  let algorithm: TrainingAlgorithm | undefined;
  if (typeof arg === 'object' && arg !== null && typeof (arg as RunArg).experiment === 'string') {
    name = (arg as RunArg).experiment;
    if (typeof (arg as StudioNode).kind === 'string') node = arg as StudioNode;
    const a = (arg as Partial<RunArg>).algorithm;
    algorithm = isTrainingAlgorithm(a) ? a : undefined;
  } else if (typeof arg === 'string') name = path.isAbsolute(arg) ? path.basename(arg) : arg;
  if (!name) {
    const names = (await store.list()).filter((e) => e.status === 'ok').map((e) => e.name);
    if (names.length === 0) return void vscode.window.showInformationMessage('No experiments yet: run "DDPO Studio: New Experiment" first.');
    name = names.length === 1 ? names[0] : await vscode.window.showQuickPick(names, { title, placeHolder: 'Which experiment?', ignoreFocusOut: true });
    if (!name) return undefined;
  }
  try {
    return { name, dir: store.dirOf(name), experiment: await store.read(name), node, ...(algorithm ? { algorithm } : {}) };
  } catch (e) {
    void vscode.window.showErrorMessage(`Cannot open experiment "${name}": ${(e as Error).message}`);
    return undefined;
  }
}
