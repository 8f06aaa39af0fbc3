/** The shape of one `ddpo` subcommand; src/cli/main.ts dispatches to these. */
export interface CliCommand {
  /** Words that select it, e.g. ['generate'] or ['reward', 'train']. */
  path: string[];
  /** One line for `ddpo --help`. */
  summary: string;
  /** Full usage text for `ddpo <path> --help`. */
  usage: string;
  /** Runs with the remaining argv; resolves to the process exit code. */
  run(argv: string[], io: CliIO): Promise<number>;
}

/** Where a command writes; tests pass their own. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  /** Progress that may be overwritten in a terminal (a plain line elsewhere). */
  progress(line: string): void;
  /** Aborted on Ctrl+C. */
  signal: AbortSignal;
}

/** Minimal flag parser: `--name value`, `--flag`, `--name=value`; the rest are positionals. */
export function parseFlags(argv: string[], booleans: readonly string[] = []): { flags: Record<string, string | true>; positionals: string[] } {
  const flags: Record<string, string | true> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) { flags[a.slice(2, eq)] = a.slice(eq + 1); continue; }
      const name = a.slice(2);
      if (booleans.includes(name) || i + 1 >= argv.length || argv[i + 1].startsWith('--')) flags[name] = true;
      else flags[name] = argv[++i];
    } else positionals.push(a);
  }
  return { flags, positionals };
}
