import * as path from 'node:path';
import { resolveInside } from '../fsutil';

export { resolveInside };

/** Express `abs` relative to `root` with forward slashes, refusing paths outside it. */
export function relativeInside(root: string, abs: string): string {
  const rel = path.relative(path.resolve(root), path.resolve(abs)).split(path.sep).join('/');
  resolveInside(root, rel);
  return rel;
}
