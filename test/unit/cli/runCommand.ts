/** Runs one `ddpo` command the way the executable does: its argv checked against its declaration, then `run`. */
import type { CliCommand, CliIO } from '../../../src/cli/command';
import { runCli } from '../../../src/cli/dispatch';

/** `ddpo <command.path> ...argv`, dispatched to `command` alone; resolves to the exit code. */
export function runCommand(command: CliCommand, argv: readonly string[], io: CliIO): Promise<number> {
  return runCli([...command.path, ...argv], io, [command]);
}
