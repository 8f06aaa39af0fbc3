/** What commands, views and panels share: created once in activate(). */
import * as vscode from 'vscode';
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
