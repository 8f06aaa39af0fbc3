/** Extension entry point: wires the output channel, worker client, Experiments tree, runs and commands. */
import * as vscode from 'vscode';
import { interruptedRuns } from '../core/studio/treeModel';
import { watchStudio, type StudioWatch } from '../core/studio/watch';
import { registerCommands } from './commands';
import { openDashboard } from './commands/studio';
import { refreshDashboard } from './panels/dashboardPanel';
import { refreshExperimentPanel } from './panels/experimentPanel';
import { openRatingPanel } from './panels/ratingPanel';
import { registerPanelRestore } from './panels/restore';
import type { Services } from './services';
import type { RunArg } from './studio/pick';
import { currentStore } from './workspaceStore';
import { RunManager } from './studio/runs';
import { ExperimentsTreeProvider } from './tree/experimentsProvider';
import { createWorkerClient } from './workerClient';

/** Activation is cheap: nothing here loads onnxruntime; the worker starts on the first request. */
export function activate(context: vscode.ExtensionContext): Services {
  const output = vscode.window.createOutputChannel('DDPO Studio');
  let runs: RunManager | undefined;
  const worker = createWorkerClient(context, output, () => runs?.anyRunning ?? false);
  const services = {} as Services;
  runs = new RunManager(worker, output, (dir) => openDashboard(services, dir), context.globalState);
  const tree = new ExperimentsTreeProvider(output, (dir, algorithm) => runs!.isRunning(dir, algorithm));
  Object.assign(services, { context, output, worker, tree, runs });
  context.subscriptions.push(output, tree, runs, vscode.window.registerTreeDataProvider('ddpoStudio.experiments', tree), ...registerCommands(services));
  context.subscriptions.push(...registerPanelRestore(services, {
    rating: (panel, src) => openRatingPanel(services, src, panel),
    dashboard: (panel, dir) => openDashboard(services, dir, panel),
  }));
  // The tree redraws from the watch on .ddpo/ (watchStudio below) for every change on disk. Explicit refreshes are
  // for what the watch cannot see: the first load and another workspace folder, a run starting or ending in this
  // window (the tree tells a running run from an interrupted one by this window's runs), and the Refresh command.
  context.subscriptions.push(runs.onDidChange((e) => e.progress === undefined && void tree.refresh()));

  let watch: StudioWatch | undefined;
  const rewatch = (): Promise<void> => {
    void watch?.close();
    const store = currentStore();
    void vscode.commands.executeCommand('setContext', 'ddpoStudio.hasWorkspace', !!store);
    watch = store
      ? watchStudio(store.workspace, (name) => {
          void tree.refresh();
          if (!name) return;
          refreshDashboard(store.dirOf(name));
          refreshExperimentPanel(name);
        }, { onError: (message) => services.output.appendLine(`[host] ${message}`) })
      : undefined;
    return tree.refresh();
  };
  void rewatch().then(() => offerResume(services));
  context.subscriptions.push(vscode.workspace.onDidChangeWorkspaceFolders(rewatch), { dispose: () => void watch?.close() });
  return services;
}

// After a reload, each run that was going when the window closed (or its worker died) is offered for resuming.
function offerResume(services: Services): void {
  for (const r of interruptedRuns(services.tree.nodes)) {
    void vscode.window.showWarningMessage(`${r.label} of ${r.experiment} was interrupted (the window closed or its worker stopped). Its checkpoints are kept.`, 'Resume', 'Open Dashboard').then((pick) => {
      const run: RunArg = { experiment: r.experiment, algorithm: r.algorithm };
      if (pick === 'Resume') void vscode.commands.executeCommand('ddpoStudio.resumeFineTune', run);
      else if (pick === 'Open Dashboard') openDashboard(services, r.dir, undefined, r.algorithm);
    });
  }
}

/** Nothing to do: disposables stop the watcher and the worker. */
export function deactivate(): void {}
