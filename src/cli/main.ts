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
  process.on('SIGINT', () => {
    // A second Ctrl+C exits at once.
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  });
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
