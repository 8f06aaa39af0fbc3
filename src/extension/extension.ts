/** Extension entry point: wires the output channel, worker client, Experiments tree and commands. */
import * as vscode from 'vscode';
import { watchExperiments, type ExperimentWatch } from '../core/experiment/watch';
import { registerCommands } from './commands';
import { currentStore, type Services } from './services';
import { ExperimentsTreeProvider } from './tree/experimentsProvider';
import { createWorkerClient } from './workerClient';

/** Activation is cheap: nothing here loads onnxruntime; the worker starts on the first request. */
export function activate(context: vscode.ExtensionContext): Services {
  const output = vscode.window.createOutputChannel('DDPO Studio');
  const worker = createWorkerClient(context, output);
  const tree = new ExperimentsTreeProvider(output);
  const services: Services = { context, output, worker, tree };
  context.subscriptions.push(output, tree, vscode.window.registerTreeDataProvider('ddpoStudio.experiments', tree), ...registerCommands(services));

  let watch: ExperimentWatch | undefined;
  const rewatch = () => {
    void watch?.close();
    const store = currentStore();
    void vscode.commands.executeCommand('setContext', 'ddpoStudio.hasWorkspace', !!store);
    watch = store ? watchExperiments(store.workspace, () => void tree.refresh()) : undefined;
    void tree.refresh();
  };
  rewatch();
  context.subscriptions.push(vscode.workspace.onDidChangeWorkspaceFolders(rewatch), { dispose: () => void watch?.close() });
  return services;
}

/** Nothing to do: disposables stop the watcher and the worker. */
export function deactivate(): void {}
