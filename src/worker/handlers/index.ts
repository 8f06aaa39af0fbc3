/** Every worker request kind mapped to its handler; add new job kinds here. */
import type { HandlerTable } from '../jobs';
import { pingHandler } from './ping';
import { selfTestHandler } from './selfTest';
import { statusHandler } from './status';
import {
  checkModelHandler, compareHandler, downloadModelHandler, exportLoraHandler, generatePairsHandler, rateHandler, startFineTuneHandler, stopFineTuneHandler, trainRewardHandler, undoHandler,
} from './studio';

/** The handler table the worker process serves. */
export const handlers: HandlerTable = {
  ping: pingHandler,
  status: statusHandler,
  selfTest: selfTestHandler,
  generatePairs: generatePairsHandler,
  rate: rateHandler,
  undo: undoHandler,
  trainReward: trainRewardHandler,
  startFineTune: startFineTuneHandler,
  stopFineTune: stopFineTuneHandler,
  compare: compareHandler,
  exportLora: exportLoraHandler,
  downloadModel: downloadModelHandler,
  checkModel: checkModelHandler,
};
