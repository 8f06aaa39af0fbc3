import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireRunLock, ExperimentBusyError, processState, readRunLock, RUN_LOCK_FILE, withRunLock, type LockHolder } from '../../../src/core/experiment/runLock';

const ROOT = path.resolve(__dirname, '../../..');

function experimentDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-lock-'));
}

/** The pid of a process that has exited (a finished child). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function writeLock(dir: string, h: Partial<LockHolder>): string {
  const file = path.join(dir, RUN_LOCK_FILE);
  fs.writeFileSync(file, JSON.stringify({ pid: 1, host: os.hostname(), since: '2026-01-01T00:00:00.000Z', what: 'ddpo train', token: 'stale-token', ...h }) + '\n');
  return file;
}

/** Entries of the folder other than the lock file (no temp files or takeover markers left behind). */
function debris(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n !== RUN_LOCK_FILE);
}

test('a lock names its holder; a second writer is refused at once naming it; after release it can be taken again', () => {
  const dir = experimentDir();
  const lock = acquireRunLock(dir, 'ddpo train');
  const h = readRunLock(dir)!;
  assert.deepEqual([h.pid, h.host, h.what], [process.pid, os.hostname(), 'ddpo train']);
  assert.ok(Date.now() - Date.parse(h.since) < 60_000);
  const err = (() => { try { acquireRunLock(dir, 'ddpo reward train'); } catch (e) { return e; } })();
  assert.ok(err instanceof ExperimentBusyError, String(err));
  assert.equal(err.message, `${dir} is in use by ddpo train (this process, pid ${process.pid}, since ${h.since}); wait for it to finish or stop it, then try again.`);
  lock.release();
  lock.release();
  assert.equal(readRunLock(dir), undefined);
  acquireRunLock(dir, 'ddpo train --resume').release();
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('a lock left by a dead process on this machine is taken over with a message', () => {
  const dir = experimentDir();
  const pid = deadPid();
  assert.equal(processState(pid, os.hostname()), 'dead');
  writeLock(dir, { pid, what: 'ddpo train' });
  const logs: string[] = [];
  const lock = acquireRunLock(dir, 'ddpo train --resume', (l) => logs.push(l));
  assert.deepEqual(logs, [`${dir}: taking over the lock left by ddpo train (pid ${pid}, since 2026-01-01T00:00:00.000Z), which no longer runs on this machine`]);
  assert.equal(readRunLock(dir)?.pid, process.pid);
  assert.deepEqual(debris(dir), []);
  lock.release();
});

test('a lock of a live process, or of another machine, is never taken over; the message says what to do', () => {
  const dir = experimentDir();
  const file = writeLock(dir, { pid: 1, what: 'DDPO Studio fine-tuning' });
  assert.throws(() => acquireRunLock(dir, 'ddpo train'), (e: Error) => e instanceof ExperimentBusyError && e.message.startsWith(`${dir} is in use by DDPO Studio fine-tuning (pid 1 on this machine, since 2026-01-01T00:00:00.000Z); wait for it to finish`));
  writeLock(dir, { pid: deadPid(), host: 'render-box-7', what: 'ddpo train' });
  assert.throws(() => acquireRunLock(dir, 'ddpo train'), (e: Error) => e.message === `${dir} is in use by ddpo train (pid ${readRunLock(dir)!.pid} on host render-box-7, since 2026-01-01T00:00:00.000Z); ` +
    `this machine cannot tell whether it still runs there; if it has stopped, delete ${file} and try again.`);
  assert.equal(readRunLock(dir)?.host, 'render-box-7', 'the other machine\'s lock is left in place');
  fs.writeFileSync(file, '');
  assert.throws(() => acquireRunLock(dir, 'ddpo train'), /does not say which \(it is empty or damaged\); if no DDPO Studio or ddpo process works on this experiment, delete that file/);
});

test('release removes only the lock it took, never one that replaced it', () => {
  const dir = experimentDir();
  const lock = acquireRunLock(dir, 'ddpo train');
  // someone deleted the lock by hand and another writer took it
  fs.rmSync(lock.file);
  writeLock(dir, { pid: 1, token: 'someone-else' });
  lock.release();
  assert.equal(readRunLock(dir)?.token, 'someone-else');
});

test('withRunLock releases on error; a nested call on the same experiment shares the lock, a parallel one is refused', async () => {
  const dir = experimentDir();
  await assert.rejects(withRunLock(dir, 'ddpo train', async () => { throw new Error('boom'); }), /boom/);
  assert.equal(readRunLock(dir), undefined);
  let parallel: unknown;
  let release!: () => void;
  const outer = withRunLock(dir, 'ddpo demo', async () => {
    await withRunLock(dir, 'reward training', async () => assert.equal(readRunLock(dir)?.what, 'ddpo demo'));
    await new Promise<void>((r) => (release = r));
  });
  await new Promise((r) => setImmediate(r));
  parallel = await withRunLock(dir, 'DDPO Studio LoRA export', async () => 'ran').catch((e) => e);
  release();
  await outer;
  assert.ok(parallel instanceof ExperimentBusyError && /in use by ddpo demo \(this process, pid \d+/.test(parallel.message), String(parallel));
  assert.equal(readRunLock(dir), undefined);
});

test('a missing experiment folder is named, not reported as a lock-file error', () => {
  assert.throws(() => acquireRunLock('/nonexistent/exp', 'ddpo train'), /cannot lock \/nonexistent\/exp: no such folder/);
});

test('a takeover cut short is reported with the files to delete', () => {
  const dir = experimentDir();
  const file = writeLock(dir, { pid: deadPid(), token: 'tok' });
  fs.writeFileSync(`${file}.takeover-tok`, '{}');
  assert.throws(() => acquireRunLock(dir, 'ddpo train'), (e: Error) => e.message.includes(`another process is taking over the lock left by ddpo train`) && e.message.includes(`delete ${file}.takeover-tok and ${file}`));
});

// Children that each spin until `go` appears, then try the lock together; resolves to their outputs.
async function race(dir: string, n: number): Promise<string[]> {
  const go = path.join(os.tmpdir(), `ddpo-lock-go-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const children = Array.from({ length: n }, () => spawn(process.execPath, ['--import', 'tsx', 'test/unit/experiment/lockChild.ts', dir, go, '300'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] }));
  const outputs = children.map((c) => {
    let out = '';
    const ready = new Promise<void>((resolve) => c.stdout.on('data', (d) => { out += d; if (out.includes('ready\n')) resolve(); }));
    const done = new Promise<string>((resolve) => c.on('close', () => resolve(out)));
    return { ready, done };
  });
  await Promise.all(outputs.map((o) => o.ready));
  fs.writeFileSync(go, '');
  try {
    return await Promise.all(outputs.map((o) => o.done));
  } finally {
    fs.rmSync(go, { force: true });
  }
}

test('processes that find the same stale lock at the same moment: exactly one takes it over, the others name it', { timeout: 120_000 }, async () => {
  for (let round = 0; round < 3; round++) {
    const dir = experimentDir();
    writeLock(dir, { pid: deadPid(), token: `stale-${round}` });
    const outs = await race(dir, 3);
    const winners = outs.filter((o) => /^won \d+$/m.test(o));
    assert.equal(winners.length, 1, outs.join('\n---\n'));
    assert.equal((winners[0].match(/taking over the lock left by ddpo train/g) ?? []).length, 1, winners[0]);
    const pid = /^won (\d+)$/m.exec(winners[0])![1];
    for (const o of outs.filter((x) => x !== winners[0])) assert.match(o, new RegExp(`^refused: .* is in use by child ${pid} \\(pid ${pid} on this machine, since .*\\)`, 'm'), o);
    assert.deepEqual(fs.readdirSync(dir), [], 'released, with no temp file or takeover marker left');
  }
});

test('a lock of a process that runs as another user (kill answers EPERM) is refused, never taken over as stale', (t) => {
  // As root every kill(pid, 0) succeeds, so the other user's process is stood in for by process.kill's answer.
  const dir = experimentDir();
  const pid = deadPid();
  writeLock(dir, { pid, what: 'DDPO Studio fine-tuning' });
  t.mock.method(process, 'kill', () => { throw Object.assign(new Error('kill EPERM'), { code: 'EPERM' }); });
  assert.equal(processState(pid, os.hostname()), 'alive');
  assert.throws(() => acquireRunLock(dir, 'ddpo train'), (e: Error) => e instanceof ExperimentBusyError && e.message.startsWith(`${dir} is in use by DDPO Studio fine-tuning (pid ${pid} on this machine`));
  assert.equal(readRunLock(dir)?.token, 'stale-token', 'the other user\'s lock is left in place');
});
