/** Test helper: a WorkerClient channel wired in memory to a real JobRunner, with a way to "crash" it. */
import type { ChannelFactory, ExitInfo, WorkerChannel } from '../../../src/worker/client';
import { JobRunner, type HandlerTable } from '../../../src/worker/jobs';

/** One in-memory worker: `crash` makes it exit as a crashed process would. */
export interface MemoryWorker {
  runner: JobRunner;
  crash(info?: Partial<ExitInfo>, fatal?: string): void;
  killed: boolean;
}

/** A ChannelFactory whose workers run `handlers` in this process; `started` lists each worker made. */
export function memoryChannels(handlers: HandlerTable): { factory: ChannelFactory; started: MemoryWorker[] } {
  const started: MemoryWorker[] = [];
  const factory: ChannelFactory = () => {
    let onMessage: (m: unknown) => void = () => undefined;
    let onExit: (i: ExitInfo) => void = () => undefined;
    let alive = true;
    // structuredClone mimics the IPC boundary: no shared objects between host and worker.
    const runner = new JobRunner(handlers, (msg) => alive && queueMicrotask(() => alive && onMessage(structuredClone(msg))));
    const worker: MemoryWorker = {
      runner,
      killed: false,
      crash(info = {}, fatal) {
        if (fatal) onMessage({ type: 'fatal', error: { code: 'worker-crashed', message: fatal } });
        alive = false;
        runner.cancelAll();
        onExit({ code: 1, signal: null, ...info });
      },
    };
    started.push(worker);
    const channel: WorkerChannel = {
      send: (msg) => alive && queueMicrotask(() => runner.handle(structuredClone(msg))),
      onMessage: (cb) => (onMessage = cb),
      onExit: (cb) => (onExit = cb),
      kill: () => {
        alive = false;
        worker.killed = true;
        runner.cancelAll();
      },
    };
    return channel;
  };
  return { factory, started };
}
