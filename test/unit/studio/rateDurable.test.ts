// A rating the panel shows as "Saved ✓" must survive a power cut: its bytes are fsynced before the worker replies.
// (A kill -9 cannot show this: the page cache outlives the process.)
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { handlers } from '../../../src/worker/handlers';
import { JobRunner } from '../../../src/worker/jobs';
import { RATINGS_FILE } from '../../../src/core/reward/store';
import type { WorkerToHost } from '../../../src/protocol';

type Event = { op: 'open'; fd: number; file: string } | { op: 'write'; fd: number; text: string } | { op: 'fsync'; fd: number } | { op: 'reply'; ok: boolean };

/** Records opens, writes and fsyncs of file descriptors, through the sync API and through FileHandles. */
async function spyOnFiles(events: Event[]): Promise<void> {
  const text = (data: unknown) => (typeof data === 'string' ? data : Buffer.from(data as Uint8Array).toString('utf8'));
  const wrap = <T extends object>(obj: T, name: string, before: (args: unknown[], self: unknown) => void, after?: (result: unknown, args: unknown[]) => void) => {
    const orig = (obj as Record<string, (...a: unknown[]) => unknown>)[name];
    mock.method(obj, name as never, function (this: unknown, ...args: unknown[]) {
      before(args, this);
      const r = orig.apply(this, args);
      after?.(r, args);
      return r;
    } as never);
  };
  wrap(fs, 'openSync', () => undefined, (fd, args) => events.push({ op: 'open', fd: fd as number, file: path.resolve(String(args[0])) }));
  for (const name of ['writeFileSync', 'writeSync', 'appendFileSync']) {
    wrap(fs, name, (args) => { if (typeof args[0] === 'number') events.push({ op: 'write', fd: args[0], text: text(args[1]) }); });
  }
  for (const name of ['fsyncSync', 'fdatasyncSync']) wrap(fs, name, (args) => events.push({ op: 'fsync', fd: args[0] as number }));
  // FileHandle methods live on its prototype; a durable write through fs.promises is seen there
  const probe = await fs.promises.open(__filename, 'r');
  const proto = Object.getPrototypeOf(probe) as object;
  await probe.close();
  wrap(fs.promises, 'open', () => undefined, (r, args) => void (r as Promise<fs.promises.FileHandle>).then((h) => events.push({ op: 'open', fd: h.fd, file: path.resolve(String(args[0])) }), () => undefined));
  for (const name of ['sync', 'datasync']) wrap(proto, name, (_a, self) => events.push({ op: 'fsync', fd: (self as fs.promises.FileHandle).fd }));
  for (const name of ['write', 'writeFile', 'appendFile']) wrap(proto, name, (args, self) => events.push({ op: 'write', fd: (self as fs.promises.FileHandle).fd, text: text(args[0]) }));
}

test('the worker replies to a rating only after the line holding it was fsynced', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-rate-durable-'));
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({ schemaVersion: 1, name: 'durable', createdAt: '2026-01-01T00:00:00Z', baseModel: { id: 'x' }, prompts: ['a cat'] }));
  const events: Event[] = [];
  await spyOnFiles(events);
  t.after(() => mock.restoreAll());
  const replied = new Promise<void>((resolve) => {
    const runner = new JobRunner(handlers, (msg: WorkerToHost) => {
      if (msg.type !== 'reply') return;
      events.push({ op: 'reply', ok: msg.ok });
      resolve();
    });
    runner.handle({ type: 'request', id: 1, kind: 'rate', params: { experimentDir: dir, pairId: 'p1', prompt: 'a cat', left: 'samples/p1/a.png', right: 'samples/p1/b.png', choice: 'right', sideOrder: 'ba' } });
  });
  await replied;
  mock.restoreAll();

  const ratings = path.join(fs.realpathSync(dir), RATINGS_FILE);
  const reply = events.findIndex((e) => e.op === 'reply');
  assert.ok(reply >= 0 && (events[reply] as { ok: boolean }).ok, 'the rating was accepted');
  const real = (f: string) => path.join(fs.realpathSync(path.dirname(f)), path.basename(f));
  const fds = new Set(events.flatMap((e) => (e.op === 'open' && real(e.file) === ratings ? [e.fd] : [])));
  const write = events.findIndex((e) => e.op === 'write' && fds.has(e.fd) && e.text.includes('"pairId":"p1"'));
  assert.ok(write >= 0 && write < reply, `the rating's line is written to ${RATINGS_FILE} before the reply: ${JSON.stringify(events)}`);
  const fsync = events.findIndex((e, i) => i > write && e.op === 'fsync' && fds.has(e.fd));
  assert.ok(fsync > write && fsync < reply, `an fsync of ${RATINGS_FILE} comes between the write and the reply: ${JSON.stringify(events)}`);
  assert.match(fs.readFileSync(ratings, 'utf8'), /"choice":"right"/);
});
