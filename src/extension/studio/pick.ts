/** Resolves a command's argument (a tree node, a name, or nothing: ask) to an experiment. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Experiment } from '../../core/experiment/schema';
import type { StudioNode } from '../../core/studio/treeModel';
import { requireStore } from '../workspaceStore';

/** An experiment a command acts on. */
export interface PickedExperiment {
  name: string;
  dir: string;
  experiment: Experiment;
  /** The tree node the command was invoked on, if any. */
  node?: StudioNode;
}

/** A tree node, an experiment name or folder path; undefined asks with a quick pick. */
export async function pickExperiment(arg: unknown, title: string): Promise<PickedExperiment | undefined> {
  const store = requireStore();
  if (!store) return undefined;
  let name: string | undefined;
  let node: StudioNode | undefined;
  if (typeof arg === 'object' && arg !== null && typeof (arg as StudioNode).experiment === 'string') {
    node = arg as StudioNode;
    name = node.experiment;
  } else if (typeof arg === 'string') name = path.isAbsolute(arg) ? path.basename(arg) : arg;
  if (!name) {
    const names = (await store.list()).filter((e) => e.status === 'ok').map((e) => e.name);
    if (names.length === 0) return void vscode.window.showInformationMessage('No experiments yet: run "DDPO Studio: New Experiment" first.');
    name = names.length === 1 ? names[0] : await vscode.window.showQuickPick(names, { title, placeHolder: 'Which experiment?', ignoreFocusOut: true });
    if (!name) return undefined;
  }
  try {
    return { name, dir: store.dirOf(name), experiment: await store.read(name), node };
  } catch (e) {
    void vscode.window.showErrorMessage(`Cannot open experiment "${name}": ${(e as Error).message}`);
    return undefined;
  }
}
