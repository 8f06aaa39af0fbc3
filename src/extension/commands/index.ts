/** Registers every DDPO Studio command; add new command modules here. */
import * as vscode from 'vscode';
import type { Services } from '../services';
import { openExperimentPanel } from '../panels/experimentPanel';
import { newExperiment } from './newExperiment';
import { compareModels, compareWithBase, openComparison } from './compare';
import { deleteExperiment, exportLora, openDashboard, ratePairs, revealExperiment, startFineTune, stopFineTune, trainReward } from './studio';
import { workerStatus } from './workerStatus';
import { pickExperiment } from '../studio/pick';
import { COMMANDS } from './ids';

export { COMMANDS };

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
    reg(COMMANDS.openExperiment, (name?: unknown) => openExperimentPanel(services, typeof name === 'string' ? name : (name as { experiment?: string } | undefined)?.experiment)),
    reg(COMMANDS.rate, (arg?: unknown) => ratePairs(services, arg)),
    reg(COMMANDS.trainReward, (arg?: unknown) => trainReward(services, arg)),
    reg(COMMANDS.startFineTune, (arg?: unknown) => startFineTune(services, arg, false)),
    reg(COMMANDS.resumeFineTune, (arg?: unknown) => startFineTune(services, arg, true)),
    reg(COMMANDS.stopFineTune, (arg?: unknown) => stopFineTune(services, arg)),
    reg(COMMANDS.openDashboard, async (arg?: unknown) => {
      const x = await pickExperiment(arg, 'Open the training dashboard of which experiment?');
      // the run of the row (or dashboard button) it came from: the Diffusion-DPO row opens the Diffusion-DPO run
      if (x) openDashboard(services, x.dir, undefined, x.algorithm);
    }),
    reg(COMMANDS.compare, (arg?: unknown) => compareWithBase(services, arg)),
    reg(COMMANDS.compareModels, (arg?: unknown) => compareModels(services, arg)),
    reg(COMMANDS.openComparison, (arg?: unknown) => openComparison(services, arg)),
    reg(COMMANDS.exportLora, (arg?: unknown) => exportLora(services, arg)),
    reg(COMMANDS.reveal, (arg?: unknown) => revealExperiment(arg)),
    reg(COMMANDS.deleteExperiment, (arg?: unknown) => deleteExperiment(services, arg)),
  ];
}
