/** Registers every DDPO Studio command; add new command modules here. */
import * as vscode from 'vscode';
import type { Services } from '../services';
import { OPEN_EXPERIMENT_COMMAND } from '../tree/experimentsProvider';
import { openExperimentPanel } from '../panels/experimentPanel';
import { newExperiment } from './newExperiment';
import { workerStatus } from './workerStatus';

/** Command ids as declared in package.json. */
export const COMMANDS = {
  newExperiment: 'ddpoStudio.newExperiment',
  refresh: 'ddpoStudio.refresh',
  showWorkerLog: 'ddpoStudio.showWorkerLog',
  workerStatus: 'ddpoStudio.workerStatus',
  restartWorker: 'ddpoStudio.restartWorker',
  openExperiment: OPEN_EXPERIMENT_COMMAND,
} as const;

/** Registers all commands and returns their disposables. */
export function registerCommands(services: Services): vscode.Disposable[] {
  const reg = (id: string, fn: (...args: never[]) => unknown) => vscode.commands.registerCommand(id, fn as (...args: unknown[]) => unknown);
  return [
    reg(COMMANDS.newExperiment, (name?: string) => newExperiment(services, typeof name === 'string' ? name : undefined)),
    reg(COMMANDS.refresh, () => services.tree.refresh()),
    reg(COMMANDS.showWorkerLog, () => services.output.show(true)),
    reg(COMMANDS.workerStatus, () => workerStatus(services)),
    reg(COMMANDS.restartWorker, () => {
      services.worker.restart();
      services.output.appendLine('[host] worker stopped; it starts again on the next request');
    }),
    reg(COMMANDS.openExperiment, (name?: string) => openExperimentPanel(services, name)),
  ];
}
