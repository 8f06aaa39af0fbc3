/** `ping`: answers at once, proving the worker process is alive. */
import type { JobHandler } from '../jobs';

/** Handler for `ping`. */
export const pingHandler: JobHandler<'ping'> = {
  parse: () => ({}),
  run: async () => ({ pid: process.pid, uptimeSeconds: Math.round(process.uptime()) }),
};
