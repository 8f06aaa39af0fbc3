/** Entry point of the background worker process (forked by the extension host with an IPC channel). */
import type { WorkerToHost } from '../protocol';
import { handlers } from './handlers';
import { JobRunner, toErrorInfo } from './jobs';

function send(msg: WorkerToHost): void {
  // After the parent is gone there is nobody to tell; the process is exiting anyway.
  if (process.connected) process.send?.(msg);
}

function main(): void {
  if (!process.send) {
    console.error('The DDPO Studio worker must be started by the extension (it needs an IPC channel); nothing to do.');
    process.exit(2);
  }
  const runner = new JobRunner(handlers, send, (line) => console.log(line));
  process.on('message', (m) => runner.handle(m));
  // The worker lives only as long as its parent: IPC disconnect means the extension host died or quit.
  process.on('disconnect', () => {
    runner.cancelAll();
    process.exit(0);
  });
  const die = (e: unknown) => {
    console.error(`Worker crashed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    send({ type: 'fatal', error: { ...toErrorInfo(e), code: 'worker-crashed' } });
    // Give the IPC message a moment to flush before exiting.
    setTimeout(() => process.exit(1), 50);
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
  console.log(`DDPO Studio worker started (pid ${process.pid}, node ${process.version})`);
  send({ type: 'hello', pid: process.pid });
}

main();
