/** The `ddpo` executable: wires stdout/stderr and Ctrl+C, then dispatches to the registered commands. */
import type { CliIO } from './command';
import { commands } from './commands';
import { runCli } from './dispatch';
import { restartWithCudaLibraries } from './cudaRestart';

async function main(): Promise<void> {
  const restarted = restartWithCudaLibraries();
  if (restarted) {
    process.exitCode = await restarted;
    return;
  }
  const controller = new AbortController();
  // Ctrl+C and SIGTERM stop the command the same way, so a run leaves an honest status and releases its lock;
  // a second signal exits at once.
  const stop = (code: number) => () => {
    if (controller.signal.aborted) process.exit(code);
    controller.abort();
  };
  process.on('SIGINT', stop(130));
  process.on('SIGTERM', stop(143));
  const tty = process.stderr.isTTY;
  // In a terminal a progress line stays open (overwritten by the next one); end it before other output.
  let progressOpen = false;
  const endProgress = (): void => {
    if (progressOpen) process.stderr.write('\n');
    progressOpen = false;
  };
  const io: CliIO = {
    out: (line) => { endProgress(); process.stdout.write(line + '\n'); },
    err: (line) => { endProgress(); process.stderr.write(line + '\n'); },
    progress: (line) => {
      if (!tty) { process.stderr.write(line + '\n'); return; }
      process.stderr.write(`\r\x1b[2K${line}`);
      progressOpen = true;
    },
    signal: controller.signal,
  };
  process.exitCode = await runCli(process.argv.slice(2), io, commands);
  endProgress();
}

void main();
