/** `selfTest`: a small long-running job that reports progress and stops when cancelled. */
import { sleep, type JobHandler } from '../jobs';

/** Handler for `selfTest`. */
export const selfTestHandler: JobHandler<'selfTest'> = {
  exclusive: true,
  parse(params) {
    const { steps, delayMs } = params as { steps?: unknown; delayMs?: unknown };
    if (!Number.isInteger(steps) || (steps as number) < 0 || (steps as number) > 10_000) throw new Error('steps must be an integer in 0..10000');
    if (typeof delayMs !== 'number' || delayMs < 0 || delayMs > 60_000) throw new Error('delayMs must be a number in 0..60000');
    return { steps: steps as number, delayMs };
  },
  async run({ steps, delayMs }, ctx) {
    for (let step = 1; step <= steps; step++) {
      await sleep(delayMs, ctx.signal);
      ctx.progress({ step, total: steps, fraction: step / steps, message: `step ${step} of ${steps}` });
    }
    return { completed: steps };
  },
};
