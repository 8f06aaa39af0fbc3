/** What a `ddpo` subcommand declares (its flags among them) and the one parser that checks a command line against it. */

/**
 * What follows a flag: nothing (`boolean`), any text, text that may be given several times (`repeatable`, all values in
 * order), a number, an integer (`integer>=0`, `integer>=1` with that bound), or one of a fixed list of words.
 */
export type FlagKind = 'boolean' | 'text' | 'repeatable' | 'number' | 'integer' | 'integer>=0' | 'integer>=1' | readonly string[];

/** The flags a command accepts, by name without the dashes: the one place the parser, the check and the usage test read. */
export type FlagTable = Readonly<Record<string, FlagKind>>;

/** The value a flag of kind K parses to. */
export type FlagValue<K extends FlagKind> = K extends 'boolean' ? true
  : K extends 'number' | 'integer' | 'integer>=0' | 'integer>=1' ? number
  : K extends 'repeatable' ? string[]
  : K extends readonly (infer W)[] ? W
  : string;

/** Parsed flag values by name: the `R` flags always present, the others when given. */
export type FlagValues<F extends FlagTable, R extends keyof F = never> =
  { -readonly [k in keyof F as k extends R ? k : never]: FlagValue<F[k]> } & { -readonly [k in keyof F as k extends R ? never : k]?: FlagValue<F[k]> };

/** Parsed command line: flag values by name and the positional arguments. */
export interface ParsedArgs<F extends FlagTable = FlagTable, R extends keyof F = never> {
  flags: FlagValues<F, R>;
  positionals: string[];
}

/** The shape of one `ddpo` subcommand; src/cli/dispatch.ts checks a command line against it before `run`. */
export interface CliCommand<F extends FlagTable = FlagTable, R extends keyof F & string = keyof F & string> {
  /** Words that select it, e.g. ['generate'] or ['reward', 'train']. */
  path: string[];
  /** One line for `ddpo --help`. */
  summary: string;
  /** Full usage text for `ddpo <path> --help`; names every flag in `flags`. */
  usage: string;
  /** Every flag it accepts; anything else is refused before it runs. */
  flags: F;
  /** Flags that must be given; a command line without one is refused with the usage. */
  required?: readonly R[];
  /** The positional arguments it requires, in order, named as its usage names them (default none). */
  args?: readonly string[];
  /** Runs with the command line parsed and checked; resolves to the process exit code. */
  run(args: ParsedArgs<F, R>, io: CliIO): Promise<number>;
}

/** A command with its flags' types inferred from its declaration, for the list `ddpo` dispatches to. */
export function defineCommand<const F extends FlagTable, const R extends keyof F & string = never>(command: CliCommand<F, R>): CliCommand {
  // `run` was checked against these flags here; the dispatcher hands it a command line checked against the same ones
  return command as unknown as CliCommand;
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

/**
 * Parses `--name value`, `--name=value` and boolean `--name` against `table`; the rest are positionals.
 * Throws UsageError on an unknown flag (naming the closest known one), a missing value, a value of the wrong kind, or a
 * flag that takes one value given twice (the second would silently win).
 */
export function parseFlags<F extends FlagTable>(argv: readonly string[], table: F): ParsedArgs<F> {
  const flags: Record<string, string | number | true | string[]> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!isFlagLike(a)) { positionals.push(a); continue; }
    const dashes = a.startsWith('--') ? 2 : 1;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(dashes, eq) : a.slice(dashes);
    const kind: FlagKind | undefined = dashes === 2 && Object.hasOwn(table, name) ? table[name] : undefined;
    if (kind === undefined) throw new UsageError(unknownFlag(eq > 0 ? a.slice(0, eq) : a, name, table));
    if (kind === 'boolean') {
      if (eq > 0) throw new UsageError(`--${name} takes no value (got ${a})`);
      flags[name] = true;
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[i + 1];
    if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value${kind === 'text' || kind === 'repeatable' ? '' : ` (${describeKind(kind)})`}`);
    if (eq < 0) i++;
    if (kind === 'repeatable') flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    else if (flags[name] !== undefined) throw new UsageError(`--${name} is given twice; give it once`);
    else flags[name] = checkValue(name, kind, value);
  }
  return { flags: flags as FlagValues<F>, positionals };
}

/**
 * Parses a whole command line against a command's declaration: its flags, its required flags and its positional
 * arguments. Throws UsageError naming what is wrong (with the usage when something required is missing).
 */
export function parseCommandLine(argv: readonly string[], command: CliCommand): ParsedArgs<FlagTable, string> {
  const parsed = parseFlags(argv, command.flags);
  const names = command.args ?? [];
  const extra = parsed.positionals.slice(names.length);
  if (extra.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}${names.length ? '' : ' (this command takes only --flags)'}; ` +
      'put a value with spaces in quotes, e.g. --prompt "a red cat"');
  }
  const missing = [...(command.required ?? []).filter((f) => parsed.flags[f] === undefined).map((f) => `--${f}`), ...names.slice(parsed.positionals.length)];
  if (missing.length) throw new UsageError(`missing ${listOf(missing, 'and')}\n${command.usage}`);
  return parsed as ParsedArgs<FlagTable, string>;
}

// `-5` and `-0.5` are values (a negative number), `-x` and `--x` are flags.
function isFlagLike(a: string): boolean {
  return a.startsWith('-') && a.length > 1 && !/^-\d|^-\.\d/.test(a);
}

// The value of a flag of `kind`: the text itself, a number, or one of the allowed words.
function checkValue(name: string, kind: Exclude<FlagKind, 'boolean' | 'repeatable'>, value: string): string | number {
  if (kind === 'text') return value;
  if (typeof kind !== 'string') {
    if (!kind.includes(value)) throw new UsageError(`--${name} must be ${describeKind(kind)}, got '${value}'`);
    return value;
  }
  const n = Number(value);
  const min = kind === 'integer>=0' ? 0 : kind === 'integer>=1' ? 1 : -Infinity;
  const ok = value.trim() !== '' && Number.isFinite(n) && (kind === 'number' || Number.isInteger(n)) && n >= min;
  if (!ok) throw new UsageError(`--${name} must be ${describeKind(kind)}, got '${value}'`);
  return n;
}

function describeKind(kind: Exclude<FlagKind, 'boolean' | 'text' | 'repeatable'>): string {
  switch (kind) {
    case 'number': return 'a number';
    case 'integer': return 'an integer';
    case 'integer>=0': return 'an integer >= 0';
    case 'integer>=1': return 'an integer >= 1';
    default: return listOf(kind, 'or');
  }
}

function listOf(words: readonly string[], conjunction: 'and' | 'or'): string {
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} ${conjunction} ${words[words.length - 1]}` : words[0];
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
