/** Durable file writes (atomic replace, durable append, folder fsync) and path containment, for every file the product writes. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Thrown when a relative path would leave its root folder (by `..`, an absolute path or a symlink). */
export class PathEscapeError extends Error {
  constructor(readonly root: string, readonly relPath: string, readonly why: string) {
    super(`Path "${relPath}" is not allowed inside ${root}: ${why}. Use a plain name inside that folder.`);
    this.name = 'PathEscapeError';
  }
}

/** True when a write failed because the disk (or the user's quota) is full. */
export function isDiskFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** How an atomic write treats an existing target. */
export interface AtomicWriteOptions {
  /** false: fail with code EEXIST when the target exists (checked atomically, so two writers never both win). */
  replace?: boolean;
}

/**
 * Writes a file so readers see either the old or the new content, never half:
 * temp file in the same folder, fsync, rename over the target, fsync the folder.
 */
export async function atomicWriteFile(file: string, data: string | Uint8Array, o: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempPathFor(file);
  try {
    await writeFileDurable(tmp, data);
    if (o.replace === false) await linkNew(tmp, file);
    else await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw writeError(file, e);
  }
  if (o.replace === false) await fs.promises.rm(tmp, { force: true });
  await fsyncDir(path.dirname(file));
}

/** {@link atomicWriteFile} for callers that cannot await. */
export function atomicWriteFileSync(file: string, data: string | Uint8Array, o: AtomicWriteOptions = {}): void {
  writeFilesAtomicallySync([file], ([f]) => f.write(data), o);
}

/** One file being written by {@link writeFilesAtomicallySync}, under a temp name beside its target. */
export interface PendingFile {
  readonly file: string;
  /** Appends bytes (or UTF-8 text); returns the offset they start at. */
  write(chunk: string | Uint8Array): number;
}

/**
 * Writes several files that belong together (a model and its external data): each into a temp file beside its
 * target, all fsynced, then renamed into place in the order given and the folders fsynced. An error before the
 * renames leaves every target as it was and no temp files. With `replace: false` a target that exists fails the
 * whole write with code EEXIST, and the targets this call had already created are removed again.
 */
export function writeFilesAtomicallySync(files: readonly string[], write: (out: PendingFile[]) => void, o: AtomicWriteOptions = {}): void {
  const open = files.map((file) => ({ file, tmp: tempPathFor(file), fd: -1, offset: 0 }));
  const created: string[] = [];
  try {
    for (const f of open) f.fd = fs.openSync(f.tmp, 'wx');
    write(open.map((f) => ({
      file: f.file,
      write: (chunk) => {
        const at = f.offset;
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
        fs.writeFileSync(f.fd, bytes);
        f.offset += bytes.byteLength;
        return at;
      },
    })));
    for (const f of open) { fs.fsyncSync(f.fd); fs.closeSync(f.fd); f.fd = -1; }
    for (const f of open) {
      if (o.replace === false) { linkNewSync(f.tmp, f.file); created.push(f.file); fs.rmSync(f.tmp, { force: true }); }
      else fs.renameSync(f.tmp, f.file);
    }
  } catch (e) {
    for (const f of open) {
      if (f.fd >= 0) fs.closeSync(f.fd);
      fs.rmSync(f.tmp, { force: true });
    }
    for (const c of created) fs.rmSync(c, { force: true });
    throw writeError(open.find((f) => !created.includes(f.file))?.file ?? files[0], e);
  }
  for (const dir of new Set(files.map((f) => path.dirname(f)))) fsyncDirSync(dir);
}

/**
 * Moves a finished file (a download's `.part`) onto its target durably: fsync its content, rename, fsync the
 * folder, so a crash right after never leaves the target name on a file whose bytes were not yet on disk.
 */
export function commitFileSync(from: string, to: string): void {
  const fd = fs.openSync(from, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(from, to);
  fsyncDirSync(path.dirname(to));
}

/**
 * Writes `file` in place and fsyncs it. Only for files in a folder that is itself renamed into place afterwards
 * (a checkpoint's temp folder); anything else goes through {@link atomicWriteFile}.
 */
export async function writeFileDurable(file: string, data: string | Uint8Array): Promise<void> {
  const handle = await fs.promises.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Appends one line (a newline is added) and fsyncs, so a crash loses at most the line being written. A write that
 * fails (a full disk) takes back what it wrote of the line, so the next line does not run on from half of this one.
 */
export async function appendLineDurable(file: string, line: string): Promise<void> {
  const bytes = lineBytes(file, line);
  const handle = await fs.promises.open(file, 'a');
  try {
    const before = (await handle.stat()).size;
    try {
      // a nearly full disk can take part of the line without an error: write the rest until it is all in or refused
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
        if (bytesWritten <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        done += bytesWritten;
      }
      await handle.sync();
    } catch (e) {
      await handle.truncate(before).catch(() => undefined);
      throw appendError(file, e);
    }
  } finally {
    await handle.close();
  }
}

/**
 * {@link appendLineDurable} on a file kept open for appending (`fs.openSync(file, 'a')`), for a log that takes many
 * lines; `file` only names it in errors. An empty line ends a line a crash left without its newline.
 */
export function appendLineDurableSync(fd: number, line: string, file: string): void {
  const before = fs.fstatSync(fd).size;
  try {
    fs.writeFileSync(fd, lineBytes(file, line));
    fs.fsyncSync(fd); // on disk before the caller says "Saved": a power cut keeps the line
  } catch (e) {
    try {
      fs.ftruncateSync(fd, before);
    } catch {
      // the next open ends a cut-off line (PreferenceStore), and readers skip it
    }
    throw appendError(file, e);
  }
}

// A full disk while appending: the log keeps every line it had.
function appendError(file: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  if (!isDiskFull(err)) return err;
  return Object.assign(new Error(`Could not append to ${file}: the disk is full (${err.code}); every line it held before is kept. Free some disk space and try again.`, { cause: err }), { code: err.code });
}

/** Fsyncs a folder, so the entries created or renamed in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows cannot open folders: best-effort there, the rename is still atomic
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** {@link fsyncDir} for callers that cannot await. */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Windows cannot open folders: best-effort there, the rename is still atomic
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

// A unique name beside the target, so the rename stays within one file system and concurrent writers never share it.
function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

function lineBytes(file: string, line: string): Buffer {
  if (line.includes('\n')) throw new Error(`cannot append to ${file}: the line contains a newline; serialize it first (e.g. JSON.stringify).`);
  return Buffer.from(line + '\n', 'utf8');
}

// A hard link creates the target only if no file has its name, atomically; file systems without hard links
// (FAT, some network shares) fall back to a check then a rename.
async function linkNew(tmp: string, file: string): Promise<void> {
  try {
    await fs.promises.link(tmp, file);
  } catch (e) {
    if (!linksUnsupported(e)) throw e;
    if (fs.existsSync(file)) throw existsError(file);
    await fs.promises.rename(tmp, file);
  }
}

function linkNewSync(tmp: string, file: string): void {
  try {
    fs.linkSync(tmp, file);
  } catch (e) {
    if (!linksUnsupported(e)) throw e;
    if (fs.existsSync(file)) throw existsError(file);
    fs.renameSync(tmp, file);
  }
}

function linksUnsupported(e: unknown): boolean {
  return ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((e as NodeJS.ErrnoException).code ?? '');
}

function existsError(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EEXIST: file already exists, link '${file}'`), { code: 'EEXIST' });
}

// A full disk gets a message a person can act on; every error keeps its code for callers that test it.
function writeError(file: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  if (!isDiskFull(err)) return err;
  return Object.assign(new Error(`Could not write ${file}: the disk is full (${err.code}); no partial file was left. Free some disk space and run again.`, { cause: err }), { code: err.code });
}

/**
 * Resolves `relPath` under `root` and throws PathEscapeError if the result (after following any
 * symlinks that already exist on disk) is not inside `root`. The target itself need not exist.
 */
export function resolveInside(root: string, relPath: string): string {
  if (relPath === '' || relPath.includes('\0')) throw new PathEscapeError(root, relPath, 'empty or contains a NUL character');
  if (path.isAbsolute(relPath) || path.win32.isAbsolute(relPath)) throw new PathEscapeError(root, relPath, 'it is absolute');
  const absRoot = path.resolve(root);
  const target = path.resolve(absRoot, relPath);
  if (!isWithin(absRoot, target)) throw new PathEscapeError(root, relPath, 'it goes above the folder');
  const realRoot = realpathOrSelf(absRoot);
  const realTarget = realpathOfDeepestExisting(target);
  if (!isWithin(realRoot, realTarget)) throw new PathEscapeError(root, relPath, `a symlink leads outside (to ${realTarget})`);
  return target;
}

/** {@link resolveInside} that answers undefined instead of throwing, for readers that leave out an entry whose path escapes. */
export function resolveInsideOrUndefined(root: string, relPath: unknown): string | undefined {
  if (typeof relPath !== 'string') return undefined;
  try {
    return resolveInside(root, relPath);
  } catch {
    return undefined;
  }
}

function isWithin(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The real path of `p` (symlinks followed), or `p` itself when it does not exist. */
export function realpathOrSelf(p: string): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return p;
  }
}

// Follows symlinks in the part of the path that exists, then appends the not-yet-created rest.
function realpathOfDeepestExisting(p: string): string {
  const rest: string[] = [];
  let cur = p;
  for (;;) {
    try {
      const real = fs.realpathSync.native(cur);
      return rest.length ? path.join(real, ...rest.reverse()) : real;
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return p;
      // a dangling symlink here would be created through; treat its target as where we'd write
      const link = readlinkOrNull(cur);
      if (link !== null) return realpathOfDeepestExisting(path.resolve(parent, link, ...rest.reverse()));
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

function readlinkOrNull(p: string): string | null {
  try {
    return fs.readlinkSync(p);
  } catch {
    return null;
  }
}
