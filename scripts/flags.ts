/**
 * `--name value` flags of the training scripts: `flag` gives a flag's value (or its fallback), `num` a finite number;
 * a flag with neither is an error that shows `usage`.
 */
export function scriptFlags(usage: string, argv: readonly string[] = process.argv): { flag: (name: string, fallback?: string) => string; num: (name: string, fallback?: string) => number } {
  const flag = (name: string, fallback?: string): string => {
    const i = argv.indexOf(`--${name}`);
    const v = i >= 0 ? argv[i + 1] : fallback;
    if (v === undefined) throw new Error(`missing --${name}; usage: ${usage}`);
    return v;
  };
  const num = (name: string, fallback?: string): number => {
    const v = Number(flag(name, fallback));
    if (!Number.isFinite(v)) throw new Error(`--${name} must be a number`);
    return v;
  };
  return { flag, num };
}
