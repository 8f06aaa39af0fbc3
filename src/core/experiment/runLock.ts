/**
 * The run lock of an experiment: one writer of its derived state at a time (DDPO training, reward training, blind
 * comparisons, LoRA exports, pair generation, the demo), whether it runs in the CLI or in the studio's worker.
 *
 * The lock is a file in the experiment folder that names its holder (pid, host, start time, what it runs). It appears
 * complete in one step (a hard link of a fsynced temp file; `open(..., 'wx')` where the file system has no hard
 * links), so a second writer refuses at once, naming the holder. A lock whose holder is a dead process on this
 * machine is taken over with a message; a lock from another machine never is, since its process cannot be checked.
 *
 * Rating is not locked: ratings.jsonl is an append-only log whose every line is fsynced, so a person may rate (and
 * undo) while a job of the same experiment runs, and a job reads the log as it was when it read it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { atomicWriteFileSync, fsyncDirSync, isDiskFull } from '../fsutil';

/** Name of the lock file inside an experiment folder. */
export const RUN_LOCK_FILE = '.run.lock';

/** What a lock file says about its holder. */
export interface LockHolder {
  pid: number;
  host: string;
  /** When it took the lock (ISO time). */
  since: string;
  /** What holds it, as a person would name it ("ddpo train", "DDPO Studio fine-tuning"). */
  what: string;
  /** Unique to this acquisition: a release or takeover touches only the lock it read. */
  token: string;
}

/** A lock this process holds; release() is safe to call more than once. */
export interface RunLock {
  readonly file: string;
  readonly holder: LockHolder;
  release(): void;
}

/** Thrown when another writer holds the experiment; the message names it and says what to do. */
export class ExperimentBusyError extends Error {
  constructor(readonly file: string, readonly holder: LockHolder | undefined, message: string) {
    super(message);
    this.name = 'ExperimentBusyError';
  }
}

/** Whether process `pid` on `host` runs: 'unknown' when the host is another machine (no way to check from here). */
export function processState(pid: number, host: string): 'alive' | 'dead' | 'unknown' {
  if (host !== os.hostname()) return 'unknown';
  if (pid === process.pid) return 'alive';
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (e) {
    // EPERM: it exists but belongs to another user
    return (e as NodeJS.ErrnoException).code === 'ESRCH' ? 'dead' : 'alive';
  }
}

/** The holder named by the experiment's lock file, or undefined when there is none (or it cannot be read). */
export function readRunLock(experimentDir: string): LockHolder | undefined {
  const h = readHolder(path.join(experimentDir, RUN_LOCK_FILE));
  return h === 'absent' || h === 'unreadable' ? undefined : h;
}

/**
 * Takes the experiment's run lock for `what`, or throws ExperimentBusyError naming who holds it. A stale lock (its
 * process on this machine is gone) is taken over, saying so through `log`.
 */
export function acquireRunLock(experimentDir: string, what: string, log: (line: string) => void = () => undefined): RunLock {
  if (!isDirectory(experimentDir)) throw new Error(`cannot lock ${experimentDir}: no such folder; check the experiment's path`);
  const file = path.join(experimentDir, RUN_LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), what, token: randomBytes(8).toString('hex') };
  let underWay: ExperimentBusyError | undefined;
  // Each pass takes the lock, refuses, or tries to take over a stale one; a few passes cover a lock released or
  // taken over by another process meanwhile.
  for (let pass = 0; pass < 10; pass++) {
    if (createLockFile(file, me)) return heldLock(file, me);
    const held = readHolder(file);
    if (held === 'absent') continue;
    if (held === 'unreadable') throw busy(file, undefined);
    if (processState(held.pid, held.host) !== 'dead') throw busy(file, held);
    const outcome = takeOverStale(file, held, me, log);
    if (!(outcome instanceof ExperimentBusyError)) {
      if (outcome) return outcome;
      continue;
    }
    underWay = outcome;
    sleepSync(20);
  }
  throw underWay ?? new ExperimentBusyError(file, undefined, `${experimentDir} is being locked and released by other processes faster than it can be taken; try again in a moment.`);
}

// The experiment folders the current async call chain holds, so a locked job may call another locked one on the
// same experiment (the demo trains the reward model and DDPO) while a job started elsewhere in this process refuses.
const heldHere = new AsyncLocalStorage<ReadonlySet<string>>();

/** Runs `fn` holding the experiment's run lock (released however `fn` ends); see {@link acquireRunLock}. */
export async function withRunLock<T>(experimentDir: string, what: string, fn: () => Promise<T>, log?: (line: string) => void): Promise<T> {
  const key = canonicalDir(experimentDir);
  const held = heldHere.getStore();
  if (held?.has(key)) return fn();
  const lock = acquireRunLock(experimentDir, what, log);
  try {
    return await heldHere.run(new Set([...(held ?? []), key]), fn);
  } finally {
    lock.release();
  }
}

function heldLock(file: string, holder: LockHolder): RunLock {
  let released = false;
  return {
    file, holder,
    release() {
      if (released) return;
      released = true;
      const now = readHolder(file);
      // Never remove a lock this acquisition does not own (someone deleted ours by hand and another took it).
      if (typeof now === 'object' && now.token === holder.token) removeEntry(file);
    },
  };
}

function createLockFile(file: string, me: LockHolder): boolean {
  try {
    return createExclusive(file, JSON.stringify(me) + '\n');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (isDiskFull(e)) throw Object.assign(new Error(`Could not create the lock file ${file}: the disk is full (${code}); nothing was written. Free some disk space and run again.`, { cause: e }), { code });
    throw new Error(`cannot create the lock file ${file} (${(e as Error).message}); check that the folder is writable and the disk has free space`);
  }
}

// Creates `file` with `content` unless it exists; false when it does.
function createExclusive(file: string, content: string): boolean {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  writeSynced(tmp, content, 'wx');
  try {
    fs.linkSync(tmp, file);
    fsyncDirSync(path.dirname(file));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    return createWithoutLink(file, content);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

// File systems without hard links (FAT, some network shares): create-exclusive, then write. A reader that comes in
// between sees an empty file and refuses without a name.
function createWithoutLink(file: string, content: string): boolean {
  try {
    writeSynced(file, content, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  fsyncDirSync(path.dirname(file));
  return true;
}

function writeSynced(file: string, content: string, flags: string): void {
  const fd = fs.openSync(file, flags);
  try {
    fs.writeFileSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readHolder(file: string): LockHolder | 'absent' | 'unreadable' {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'unreadable';
  }
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    const ok = typeof h.pid === 'number' && typeof h.host === 'string' && typeof h.since === 'string' && typeof h.what === 'string' && typeof h.token === 'string';
    return ok ? (h as LockHolder) : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

/**
 * Replaces the stale lock `stale` by `me` if it is still the one in place. Processes that found the same stale lock
 * race for a marker named after its token: only the one that creates the marker may replace the lock (renaming its
 * own complete lock file over it, so the lock never goes missing), and only after reading again that the lock is
 * still the stale one. A loser goes round again and finds the winner's live lock. Returns the lock taken, the
 * refusal to give while another process holds the marker, or undefined when the stale lock was already replaced.
 */
function takeOverStale(file: string, stale: LockHolder, me: LockHolder, log: (line: string) => void): RunLock | ExperimentBusyError | undefined {
  const marker = `${file}.takeover-${stale.token}`;
  if (!createExclusive(marker, JSON.stringify({ pid: me.pid, host: me.host, since: me.since }) + '\n')) return takeoverUnderWay(file, marker, stale);
  try {
    const now = readHolder(file);
    if (typeof now !== 'object' || now.token !== stale.token) return undefined;
    atomicWriteFileSync(file, JSON.stringify(me) + '\n');
    log(`${path.dirname(file)}: taking over the lock left by ${stale.what} (pid ${stale.pid}, since ${stale.since}), which no longer runs on this machine`);
    return heldLock(file, me);
  } finally {
    removeEntry(marker);
  }
}

function removeEntry(file: string): void {
  fs.rmSync(file, { force: true });
  fsyncDirSync(path.dirname(file));
}

function busy(file: string, h: LockHolder | undefined): ExperimentBusyError {
  const dir = path.dirname(file);
  if (!h) return new ExperimentBusyError(file, h, `${dir} is locked by another job, but ${file} does not say which (it is empty or damaged); if no DDPO Studio or ddpo process works on this experiment, delete that file and try again.`);
  const where = h.host !== os.hostname() ? `pid ${h.pid} on host ${h.host}` : h.pid === process.pid ? `this process, pid ${h.pid}` : `pid ${h.pid} on this machine`;
  const who = `${h.what} (${where}, since ${h.since})`;
  const advice = h.host !== os.hostname()
    ? `this machine cannot tell whether it still runs there; if it has stopped, delete ${file} and try again.`
    : h.pid === process.pid
      ? 'wait for it to finish or stop it, then try again.'
      : `wait for it to finish or stop it, then try again (if pid ${h.pid} is not a DDPO Studio or ddpo process, delete ${file}).`;
  return new ExperimentBusyError(file, h, `${dir} is in use by ${who}; ${advice}`);
}

function takeoverUnderWay(file: string, marker: string, stale: LockHolder): ExperimentBusyError {
  return new ExperimentBusyError(file, undefined, `${path.dirname(file)}: another process is taking over the lock left by ${stale.what} (pid ${stale.pid}) right now; ` +
    `try again in a moment (if this message stays, that takeover was cut short: delete ${marker} and ${file}).`);
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function canonicalDir(dir: string): string {
  try {
    return fs.realpathSync.native(dir);
  } catch {
    return path.resolve(dir);
  }
}
