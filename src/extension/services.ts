/** What commands, views and panels share: created once in activate(). */
import * as vscode from 'vscode';
import { ExperimentStore } from '../core/experiment/store';
import type { WorkerClient } from '../worker/client';
import type { RunManager } from './studio/runs';
import type { ExperimentsTreeProvider } from './tree/experimentsProvider';

/** Shared extension state. */
export interface Services {
  context: vscode.ExtensionContext;
  output: vscode.OutputChannel;
  worker: WorkerClient;
  tree: ExperimentsTreeProvider;
  runs: RunManager;
}

/** The store of the first workspace folder, or undefined when no folder is open. */
export function currentStore(): ExperimentStore | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder && folder.uri.scheme === 'file' ? new ExperimentStore(folder.uri.fsPath) : undefined;
}

/** Like currentStore, but tells the user to open a folder when there is none. */
export function requireStore(): ExperimentStore | undefined {
  const store = currentStore();
  if (!store) void vscode.window.showWarningMessage('DDPO Studio keeps experiments in the workspace folder: open a folder first (File > Open Folder).');
  return store;
}
