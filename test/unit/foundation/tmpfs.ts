/**
 * Runs a scenario script on a small tmpfs of its own, to fill a disk for real: in a private mount namespace, so the
 * mount never outlives the script nor shows outside it. As root `unshare -m`; otherwise `unshare -rm` (a user and
 * mount namespace), then `sudo -n unshare -m`. Where none of them can mount, the caller skips, and fails in CI.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '../../..');

/** The scenario's result (its last stdout line, JSON), or why no tmpfs could be mounted. */
export type TmpfsRun = { ok: true; result: unknown; stderr: string } | { ok: false; unavailable: string };

const MOUNT_THEN_RUN = 'mount -t tmpfs -o "size=$1" tmpfs "$2" || exit 90; shift 2; exec "$@"';

// Namespace launchers, best first for this user; a mount failure (exit 90) moves on to the next.
function launchers(): string[][] {
  const root = process.getuid?.() === 0;
  return root ? [['unshare', '-m']] : [['unshare', '-rm'], ['sudo', '-n', 'unshare', '-m']];
}

/** Runs `node --import tsx <script> <mountDir> ...args` with a fresh tmpfs of `size` (e.g. "2m") at mountDir. */
export function runOnTmpfs(script: string, size: string, args: string[], timeoutMs = 240_000): TmpfsRun {
  const mount = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-tmpfs-'));
  const tried: string[] = [];
  try {
    for (const launcher of launchers()) {
      const [cmd, ...pre] = launcher;
      const r = spawnSync(cmd, [...pre, 'sh', '-c', MOUNT_THEN_RUN, 'sh', size, mount, process.execPath, '--import', 'tsx', script, mount, ...args], {
        cwd: repo, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 2 ** 20,
      });
      if (r.error || r.status === 90 || (r.status !== 0 && /unshare:|sudo:/.test(r.stderr))) {
        tried.push(`${launcher.join(' ')}: ${r.error?.message ?? r.stderr.trim().split('\n').at(-1)}`);
        continue;
      }
      if (r.status !== 0) throw new Error(`scenario ${path.basename(script)} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stderr}`);
      const last = r.stdout.trim().split('\n').at(-1) ?? '';
      return { ok: true, result: JSON.parse(last), stderr: r.stderr };
    }
    return { ok: false, unavailable: `no tmpfs could be mounted (${tried.join('; ')})` };
  } finally {
    fs.rmSync(mount, { recursive: true, force: true });
  }
}

/** Skips a test that needs a tmpfs where none can be mounted, except in CI (CI=true), where that is a failure. */
export function requireTmpfs(run: TmpfsRun, skip: (why: string) => void): run is Extract<TmpfsRun, { ok: true }> {
  if (run.ok) return true;
  if (process.env.CI === 'true') throw new Error(`disk-full tests need a tmpfs, and CI must run them: ${run.unavailable}`);
  skip(run.unavailable);
  return false;
}
