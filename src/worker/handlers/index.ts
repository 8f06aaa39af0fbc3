/** Every worker request kind mapped to its handler; add new job kinds here. */
import type { HandlerTable } from '../jobs';
import { pingHandler } from './ping';
import { selfTestHandler } from './selfTest';
import { statusHandler } from './status';

/** The handler table the worker process serves. */
export const handlers: HandlerTable = {
  ping: pingHandler,
  status: statusHandler,
  selfTest: selfTestHandler,
};
