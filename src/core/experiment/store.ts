/** Experiments as folders under `<workspace>/.ddpo/`, each with an `experiment.json`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFile, fsyncDir, resolveInside } from '../fsutil';
import { EXPERIMENT_FILE, EXPERIMENT_KEYS, Experiment, ExperimentFormatError, newExperiment, parseExperiment, serializeExperiment } from './schema';

/** Folder under the workspace that holds all experiments. */
export const DDPO_DIR = '.ddpo';

/** One folder under `.ddpo/`: a readable experiment, or the reason it cannot be read. */
export type ExperimentEntry =
  | { status: 'ok'; name: string; dir: string; experiment: Experiment }
  | { status: 'error'; name: string; dir: string; reason: string };

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Returns why `name` is not a usable experiment name, or null when it is fine. */
export function experimentNameProblem(name: string): string | null {
  if (!NAME_RE.test(name)) return 'use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';
  if (name.endsWith('.')) return 'a name cannot end with "."';
  return null;
}

/** Reads and writes the experiments of one workspace folder. */
export class ExperimentStore {
  /** Absolute path of `<workspace>/.ddpo`. */
  readonly root: string;

  constructor(readonly workspace: string) {
    this.root = path.join(path.resolve(workspace), DDPO_DIR);
  }

  /** The folder of experiment `name`; throws if the name is invalid or would leave `.ddpo/`. */
  dirOf(name: string): string {
    const problem = experimentNameProblem(name);
    if (problem) throw new Error(`Invalid experiment name "${name}": ${problem}.`);
    return resolveInside(this.root, name);
  }

  /** All experiment folders, sorted by name; unreadable ones come back as error entries. */
  async list(): Promise<ExperimentEntry[]> {
    let dirents: fs.Dirent[];
    try {
      dirents = await fs.promises.readdir(this.root, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const names = dirents.filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
    return Promise.all(names.map((name) => this.entry(name)));
  }

  /** Reads one experiment as an entry (never throws for a bad file). */
  async entry(name: string): Promise<ExperimentEntry> {
    const dir = path.join(this.root, name);
    try {
      return { status: 'ok', name, dir, experiment: await this.read(name) };
    } catch (e) {
      const reason = e instanceof ExperimentFormatError ? e.reason : (e as Error).message;
      return { status: 'error', name, dir, reason };
    }
  }

  /** Reads and validates `<name>/experiment.json` through {@link readExperiment}. */
  async read(name: string): Promise<Experiment> {
    return readExperiment(this.dirOf(name));
  }

  /**
   * Creates a new experiment folder; throws if one with that name already exists. The folder is filled under a
   * hidden temporary name beside it and renamed into place, so a failure (a full disk) leaves nothing that blocks the name.
   */
  async create(name: string, init: Parameters<typeof newExperiment>[1] = {}): Promise<Experiment> {
    const dir = this.dirOf(name);
    const exists = () => new Error(`An experiment named "${name}" already exists in ${this.root}; pick another name.`);
    await fs.promises.mkdir(this.root, { recursive: true });
    if (fs.existsSync(dir)) throw exists();
    const exp = newExperiment(name, init);
    // hidden (list() skips dot-folders) and unique, so a crash mid-way leaves no experiment and blocks no name
    let tmp: string | undefined;
    try {
      tmp = await fs.promises.mkdtemp(path.join(this.root, `.new-${name}-`));
      await atomicWriteFile(path.join(tmp, EXPERIMENT_FILE), serializeExperiment(exp));
      await fs.promises.rename(tmp, dir);
    } catch (e) {
      if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      // a folder of that name appeared meanwhile (rename refuses a non-empty target)
      if (code === 'EEXIST' || code === 'ENOTEMPTY') throw exists();
      throw new Error(`Could not create the experiment "${name}" in ${this.root}: ${(e as Error).message}. Nothing was left behind and the name is still free; check the free disk space and try again.`);
    }
    await fsyncDir(this.root);
    return exp;
  }

  /**
   * Changes experiment `name` through `change` and writes experiment.json atomically. Keys this version does not know
   * (a newer studio's, a person's own) are kept, and edits of one file run one at a time, so no edit is lost.
   */
  async update(name: string, change: (exp: Experiment) => Experiment): Promise<Experiment> {
    const file = path.join(this.dirOf(name), EXPERIMENT_FILE);
    const edit = (pendingEdits.get(file) ?? Promise.resolve()).then(async () => {
      const text = await fs.promises.readFile(file, 'utf8');
      const next = change(parseExperiment(text, file));
      const others = Object.fromEntries(Object.entries(JSON.parse(text) as Record<string, unknown>).filter(([k]) => !(EXPERIMENT_KEYS as readonly string[]).includes(k)));
      await atomicWriteFile(file, serializeExperiment({ ...next, ...others }));
      return next;
    });
    const settled = edit.then(() => undefined, () => undefined);
    pendingEdits.set(file, settled);
    void settled.then(() => { if (pendingEdits.get(file) === settled) pendingEdits.delete(file); });
    return edit;
  }
}

// The edit of each experiment.json last queued, so the next one reads what it wrote.
const pendingEdits = new Map<string, Promise<void>>();

/** Reads and validates `<dir>/experiment.json`; throws ExperimentFormatError for a bad or missing file. */
export async function readExperiment(dir: string): Promise<Experiment> {
  const file = path.join(dir, EXPERIMENT_FILE);
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ExperimentFormatError(file, `no ${EXPERIMENT_FILE} in this folder; create one with "DDPO Studio: New Experiment" or \`ddpo experiments new\`, or delete the folder`);
    throw new ExperimentFormatError(file, `cannot read (${code ?? (e as Error).message})`);
  }
  return parseExperiment(text, file);
}
