/** Durable file writes and path containment, shared by every store under `.ddpo/`. */
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
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  const handle = await fs.promises.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (e) {
    await handle.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await handle.close();
  try {
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

/** Appends one line (a newline is added) and fsyncs, so a crash loses at most the line being written. */
export async function appendLineDurable(file: string, line: string): Promise<void> {
  if (line.includes('\n')) throw new Error(`appendLineDurable(${file}): the line contains a newline; serialize it first (e.g. JSON.stringify).`);
  const handle = await fs.promises.open(file, 'a');
  try {
    await handle.write(line + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// Directory fsync makes the rename itself durable; Windows cannot open folders, so it is best-effort.
async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch {
    // not supported on this platform; the rename is still atomic
  } finally {
    await handle?.close().catch(() => undefined);
  }
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
