/** Watches `<workspace>/.ddpo/` (created later or not) and reports changes to experiment folders. */
import * as path from 'node:path';
import { watch } from 'chokidar';
import { DDPO_DIR } from './store';
import { EXPERIMENT_FILE } from './schema';

/** A running watch; `close` stops it. `ready` resolves once the initial scan is done. */
export interface ExperimentWatch {
  ready: Promise<void>;
  /** Folders being watched (absolute); lets tests check that nothing outside `.ddpo/` is. */
  watchedDirs(): string[];
  close(): Promise<void>;
}

/**
 * Calls `onChange` (debounced by `debounceMs`) when an experiment folder or its `experiment.json`
 * is added, changed or removed, including `.ddpo/` itself appearing or vanishing.
 */
export function watchExperiments(workspace: string, onChange: () => void, debounceMs = 150): ExperimentWatch {
  const root = path.resolve(workspace);
  const ddpo = path.join(root, DDPO_DIR);
  // Watch the workspace itself so `.ddpo/` may be created after us, but descend only into `.ddpo/`.
  const relevant = (p: string): boolean => {
    const abs = path.resolve(p);
    if (abs === root || abs === ddpo) return true;
    if (!abs.startsWith(ddpo + path.sep)) return false;
    const parts = path.relative(ddpo, abs).split(path.sep);
    return parts.length === 1 || (parts.length === 2 && parts[1] === EXPERIMENT_FILE);
  };
  const watcher = watch(root, { ignoreInitial: true, depth: 2, ignored: (p: string) => !relevant(p) });
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      onChange();
    }, debounceMs);
  };
  watcher.on('all', fire);
  // Errors (e.g. too many watched files) must not take down the caller; a manual refresh still works.
  watcher.on('error', () => undefined);
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return {
    ready,
    watchedDirs: () => Object.keys(watcher.getWatched()).map((d) => path.resolve(root, d)),
    async close() {
      if (timer) clearTimeout(timer);
      await watcher.close();
    },
  };
}
