/** The `ddpo` executable: wires stdout/stderr and Ctrl+C, then dispatches to the registered commands. */
import type { CliIO } from './command';
import { commands } from './commands';
import { runCli } from './dispatch';

async function main(): Promise<void> {
  const controller = new AbortController();
  process.on('SIGINT', () => {
    // A second Ctrl+C exits at once.
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  });
  const tty = process.stderr.isTTY;
  const io: CliIO = {
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    progress: (line) => process.stderr.write(tty ? `\r\x1b[2K${line}` : line + '\n'),
    signal: controller.signal,
  };
  process.exitCode = await runCli(process.argv.slice(2), io, commands);
}

void main();
