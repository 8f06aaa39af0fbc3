/** Durable file writes (atomic replace, durable append, folder fsync) and path containment, for every file the product writes. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Thrown when a relative path would leave its root folder (by `..`, an absolute path or a symlink). */
export class PathEscapeError extends Error {
  constructor(readonly root: string, readonly relPath: string, why: string) {
    super(`Path "${relPath}" is not allowed inside ${root}: ${why}. Use a plain name inside that folder.`);
    this.name = 'PathEscapeError';
  }
}

/**
 * Writes a file so readers see either the old or the new content, never half:
 * temp file in the same folder, fsync, rename over the target, fsync the folder.
 */
export async function atomicWriteFile(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(file);
  try {
    await writeFileDurable(tmp, data);
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

/** {@link atomicWriteFile} for callers that cannot await. */
export function atomicWriteFileSync(file: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(file);
  try {
    writeFileDurableSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDirSync(path.dirname(file));
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

/** Appends one line (a newline is added) and fsyncs, so a crash loses at most the line being written. */
export async function appendLineDurable(file: string, line: string): Promise<void> {
  const bytes = lineBytes(file, line);
  const handle = await fs.promises.open(file, 'a');
  try {
    await handle.write(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * {@link appendLineDurable} on a file kept open for appending (`fs.openSync(file, 'a')`), for a log that takes many
 * lines; `file` only names it in errors. An empty line ends a line a crash left without its newline.
 */
export function appendLineDurableSync(fd: number, line: string, file: string): void {
  fs.writeFileSync(fd, lineBytes(file, line));
  fs.fsyncSync(fd);
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

function writeFileDurableSync(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
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

function isWithin(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function realpathOrSelf(p: string): string {
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
