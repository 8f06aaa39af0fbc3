/** Finds the command for an argv and prints help; kept apart from main.ts so tests can run it in-process. */
import { type CliCommand, type CliIO, UsageError, parseCommandLine } from './command';

/** Text of `ddpo --help`. */
export function helpText(commands: readonly CliCommand[]): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  return [
    'ddpo — DDPO Studio on the command line: teach an image model your taste.',
    '',
    'Usage: ddpo <command> [options]   (ddpo <command> --help for details)',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

/** Runs the command matching `argv` (longest path wins); resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIO, commands: readonly CliCommand[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(helpText(commands));
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version') argv = ['version'];
  const match = [...commands].sort((a, b) => b.path.length - a.path.length).find((c) => c.path.every((w, i) => argv[i] === w));
  if (!match) {
    const group = commands.filter((c) => c.path[0] === argv[0]);
    io.err(group.length ? `Unknown "${argv.join(' ')}". Try one of: ${group.map((c) => c.path.join(' ')).join(', ')}.` : `Unknown command "${argv[0]}". Run "ddpo --help" for the list.`);
    return 2;
  }
  const rest = argv.slice(match.path.length);
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(match.usage);
    return 0;
  }
  const name = `ddpo ${match.path.join(' ')}`;
  try {
    return await match.run(parseCommandLine(rest, match), io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${name}: ${e.message}`);
      return 2;
    }
    if (io.signal.aborted) {
      io.err('Interrupted.');
      return 130;
    }
    io.err(`${name}: ${(e as Error).message}`);
    return 1;
  }
}
