/** Watches the files under `.ddpo/` that change what the studio shows (not the images themselves). */
import * as path from 'node:path';
import { watch } from 'chokidar';
import { RUN_DIRS } from '../ddpo/layout';
import { DDPO_DIR } from '../experiment/store';

/** A running watch. */
export interface StudioWatch {
  ready: Promise<void>;
  /** Folders being watched (absolute); lets tests check that nothing outside `.ddpo/` is. */
  watchedDirs(): string[];
  close(): Promise<void>;
}

// each algorithm's run folder (ddpo/, diffusion-dpo/)
const RUNS = `(${Object.values(RUN_DIRS).join('|')})`;
// Paths below `.ddpo/<experiment>/` that matter; folders on the way to them must be descended into. A checkpoint is
// written into a hidden temporary folder and renamed in whole, so only the renamed folder shows.
const FILES = [/^experiment\.json$/, /^ddpo\.json$/, /^ratings\.jsonl$/, /^reward(\/card\.json)?$/, new RegExp(`^${RUNS}(/(status\\.json|metrics\\.jsonl|checkpoints(/[^/.][^/]*)?))?$`), /^compare(\/[^/]+(\/(manifest\.json|ratings\.jsonl))?)?$/];
// Folders whose appearing shows in the tree: an experiment (also one made by hand) and a complete checkpoint. The
// others (reward/, compare/<id>/) show once the file written last in them appears, which is reported then.
const FOLDERS_SHOWN = new RegExp(`^(|${RUNS}/checkpoints/[^/]+)$`);

/** True for a path (relative to the experiment folder, "/"-separated) the studio reacts to. */
export function isStudioPath(rel: string): boolean {
  return rel === '' || FILES.some((re) => re.test(rel));
}

/** How {@link watchStudio} reports. */
export interface WatchOptions {
  /** Changes of one experiment closer together than this are reported once (default 150 ms). */
  debounceMs?: number;
  /** Hears the watcher's errors, in words. */
  onError?: (message: string) => void;
}

/**
 * Calls `onChange(experimentName | undefined)` (debounced per experiment) when an experiment's description,
 * ratings, reward card, run status, metrics, checkpoints or comparisons change; undefined means `.ddpo/` itself.
 */
export function watchStudio(workspace: string, onChange: (experiment: string | undefined) => void, o: WatchOptions = {}): StudioWatch {
  const debounceMs = o.debounceMs ?? 150;
  const root = path.resolve(workspace);
  const ddpo = path.join(root, DDPO_DIR);
  // the path below its experiment folder ("/"-separated), or undefined for the root, `.ddpo`, paths outside it and
  // hidden folders of `.ddpo` (an experiment being created is filled there and renamed into place, as the store lists)
  const inExperiment = (p: string): string | undefined => {
    const abs = path.resolve(p);
    if (!abs.startsWith(ddpo + path.sep)) return undefined;
    const [name, ...below] = path.relative(ddpo, abs).split(path.sep);
    return name.startsWith('.') ? undefined : below.join('/');
  };
  const relevant = (p: string): boolean => {
    const abs = path.resolve(p);
    if (abs === root || abs === ddpo) return true;
    const rel = inExperiment(abs);
    return rel !== undefined && isStudioPath(rel);
  };
  const watcher = watch(root, { ignoreInitial: true, depth: 5, ignored: (p: string) => !relevant(p) });
  const timers = new Map<string, NodeJS.Timeout>();
  watcher.on('all', (event, p) => {
    const inside = inExperiment(p);
    if (event === 'addDir' && inside !== undefined && !FOLDERS_SHOWN.test(inside)) return;
    const rel = path.relative(ddpo, path.resolve(p));
    const name = rel.startsWith('..') || rel === '' ? undefined : rel.split(path.sep)[0];
    const key = name ?? '';
    clearTimeout(timers.get(key));
    timers.set(key, setTimeout(() => {
      timers.delete(key);
      onChange(name);
    }, debounceMs));
  });
  // Errors (e.g. the system's limit of watched files) must not take down the caller, but are said: changes the watch
  // then misses show only after a manual refresh.
  watcher.on('error', (e) => o.onError?.(`the .ddpo/ folder watch failed (${(e as Error).message}); the Experiments tree may miss changes until Refresh`));
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return {
    ready,
    watchedDirs: () => Object.keys(watcher.getWatched()).map((d) => path.resolve(root, d)),
    async close() {
      for (const t of timers.values()) clearTimeout(t);
      await watcher.close();
    },
  };
}
