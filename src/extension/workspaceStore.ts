/** The experiment store of the open workspace folder: DDPO Studio keeps its experiments there. */
import * as vscode from 'vscode';
import { ExperimentStore } from '../core/experiment/store';

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
