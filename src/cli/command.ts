/** What a `ddpo` subcommand declares (its flags among them) and the one parser that checks a command line against it. */

/** What follows a flag: nothing (`boolean`), any text, a number, an integer, or one of a fixed list of words. */
export type FlagKind = 'boolean' | 'text' | 'number' | 'integer' | readonly string[];

/** The flags a command accepts, by name without the dashes: the one place the parser, the check and the usage test read. */
export type FlagTable = Readonly<Record<string, FlagKind>>;

/** The shape of one `ddpo` subcommand; src/cli/main.ts dispatches to these. */
export interface CliCommand {
  /** Words that select it, e.g. ['generate'] or ['reward', 'train']. */
  path: string[];
  /** One line for `ddpo --help`. */
  summary: string;
  /** Full usage text for `ddpo <path> --help`; names every flag in `flags`. */
  usage: string;
  /** Every flag it accepts; anything else is refused before it runs. */
  flags: FlagTable;
  /** How many positional arguments it takes (default none). */
  args?: number;
  /** Runs with the remaining argv; resolves to the process exit code. */
  run(argv: string[], io: CliIO): Promise<number>;
}

/** Where a command writes; tests pass their own. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  /** Progress that may be overwritten in a terminal (a plain line elsewhere). */
  progress(line: string): void;
  /** Aborted on Ctrl+C or SIGTERM. */
  signal: AbortSignal;
}

/** A mistake in the command line itself; `ddpo` exits 2 on it. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parsed command line: flag values by name (`true` for a boolean flag) and the positional arguments. */
export interface ParsedArgs {
  flags: Record<string, string | true>;
  positionals: string[];
}

/**
 * Parses `--name value`, `--name=value` and boolean `--name` against `table`; the rest are positionals.
 * Throws UsageError on an unknown flag (naming the closest known one), a missing value, or a value of the wrong kind.
 */
export function parseFlags(argv: readonly string[], table: FlagTable): ParsedArgs {
  const flags: Record<string, string | true> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!isFlagLike(a)) { positionals.push(a); continue; }
    const dashes = a.startsWith('--') ? 2 : 1;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(dashes, eq) : a.slice(dashes);
    const kind = dashes === 2 && Object.hasOwn(table, name) ? table[name] : undefined;
    if (kind === undefined) throw new UsageError(unknownFlag(eq > 0 ? a.slice(0, eq) : a, name, table));
    if (kind === 'boolean') {
      if (eq > 0) throw new UsageError(`--${name} takes no value (got ${a})`);
      flags[name] = true;
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[i + 1];
    if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value${kind === 'text' ? '' : ` (${describeKind(kind)})`}`);
    if (eq < 0) i++;
    checkValue(name, kind, value);
    flags[name] = value;
  }
  return { flags, positionals };
}

/** Checks a whole command line against a command's declaration (flags and positional count); throws UsageError. */
export function checkArgs(argv: readonly string[], command: Pick<CliCommand, 'flags' | 'args'>): void {
  const { positionals } = parseFlags(argv, command.flags);
  const extra = positionals.slice(command.args ?? 0);
  if (extra.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}${command.args ? '' : ' (this command takes only --flags)'}; ` +
      'put a value with spaces in quotes, e.g. --prompt "a red cat"');
  }
}

// `-5` and `-0.5` are values (a negative number), `-x` and `--x` are flags.
function isFlagLike(a: string): boolean {
  return a.startsWith('-') && a.length > 1 && !/^-\d|^-\.\d/.test(a);
}

function checkValue(name: string, kind: Exclude<FlagKind, 'boolean'>, value: string): void {
  if (kind === 'text') return;
  const n = Number(value);
  const ok = typeof kind === 'string' ? value.trim() !== '' && Number.isFinite(n) && (kind === 'number' || Number.isInteger(n)) : kind.includes(value);
  if (!ok) throw new UsageError(`--${name} must be ${describeKind(kind)}, got '${value}'`);
}

function describeKind(kind: Exclude<FlagKind, 'boolean' | 'text'>): string {
  return kind === 'integer' ? 'an integer' : kind === 'number' ? 'a number' : orList(kind);
}

function orList(words: readonly string[]): string {
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}` : words[0];
}

function unknownFlag(given: string, name: string, table: FlagTable): string {
  const known = Object.keys(table);
  const hit = closestName(name, known);
  if (hit) return `unknown flag ${given}; did you mean --${hit}?`;
  return known.length ? `unknown flag ${given}; this command takes ${known.map((k) => `--${k}`).join(', ')}` : `unknown flag ${given}; this command takes no flags`;
}

/** The candidate closest to `word` by edit distance (a swap of two neighbours counts one), when it is close enough to be a typo. */
export function closestName(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) { best = c; bestD = d; }
  }
  if (best !== undefined && bestD <= Math.max(1, Math.min(3, Math.floor(w.length / 3)))) return best;
  // a unique abbreviation (`--neg` for `--negative`)
  const prefixed = candidates.filter((c) => w.length >= 2 && c.toLowerCase().startsWith(w));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1.
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
