/** The studio's command ids, apart from the commands themselves so that panels can run a command without importing its module. */
import { OPEN_EXPERIMENT_COMMAND } from '../tree/experimentsProvider';

/** Command ids as declared in package.json. */
export const COMMANDS = {
  newExperiment: 'ddpoStudio.newExperiment',
  refresh: 'ddpoStudio.refresh',
  showWorkerLog: 'ddpoStudio.showWorkerLog',
  workerStatus: 'ddpoStudio.workerStatus',
  restartWorker: 'ddpoStudio.restartWorker',
  openExperiment: OPEN_EXPERIMENT_COMMAND,
  rate: 'ddpoStudio.rate',
  trainReward: 'ddpoStudio.trainReward',
  startFineTune: 'ddpoStudio.startFineTune',
  resumeFineTune: 'ddpoStudio.resumeFineTune',
  stopFineTune: 'ddpoStudio.stopFineTune',
  openDashboard: 'ddpoStudio.openDashboard',
  compare: 'ddpoStudio.compare',
  compareModels: 'ddpoStudio.compareModels',
  openComparison: 'ddpoStudio.openComparison',
  exportLora: 'ddpoStudio.exportLora',
  reveal: 'ddpoStudio.revealExperiment',
  deleteExperiment: 'ddpoStudio.deleteExperiment',
} as const;
