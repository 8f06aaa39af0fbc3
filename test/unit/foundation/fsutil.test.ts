import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PathEscapeError, appendLineDurable, appendLineDurableSync, atomicWriteFile, atomicWriteFileSync, commitFileSync, resolveInside, resolveInsideOrUndefined, writeFilesAtomicallySync } from '../../../src/core/fsutil';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-fsutil-'));
}

test('atomicWriteFile replaces the content and leaves no temp files behind', async () => {
  const dir = tmpdir();
  const file = path.join(dir, 'experiment.json');
  await atomicWriteFile(file, 'old');
  await atomicWriteFile(file, new TextEncoder().encode('new content'));
  assert.equal(fs.readFileSync(file, 'utf8'), 'new content');
  assert.deepEqual(fs.readdirSync(dir), ['experiment.json']);
});

test('concurrent atomic writes leave one complete version, never a mix', async () => {
  const dir = tmpdir();
  const file = path.join(dir, 'a.json');
  const versions = Array.from({ length: 8 }, (_, i) => JSON.stringify({ v: i, pad: 'x'.repeat(10_000 + i) }));
  await Promise.all(versions.map((v) => atomicWriteFile(file, v)));
  assert.ok(versions.includes(fs.readFileSync(file, 'utf8')));
  assert.deepEqual(fs.readdirSync(dir), ['a.json']);
});

test('atomicWriteFile into a missing folder fails and names the path', async () => {
  const dir = tmpdir();
  await assert.rejects(atomicWriteFile(path.join(dir, 'nope', 'x.json'), 'x'), /nope/);
});

test('appendLineDurable appends whole lines and refuses embedded newlines', async () => {
  const file = path.join(tmpdir(), 'ratings.jsonl');
  await appendLineDurable(file, '{"a":1}');
  await appendLineDurable(file, '{"a":2}');
  assert.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n{"a":2}\n');
  await assert.rejects(appendLineDurable(file, 'two\nlines'), /newline/);
});

// A disk that fills under delayed allocation (ext4, XFS, network shares) accepts the write and refuses the fsync: the
// line has reached the file by then, and metrics.jsonl must not keep a line whose append was reported as failed.
test('appendLineDurable refused by a full disk takes its line back: the log keeps its earlier lines, and the next one reads back whole', async (t) => {
  const file = path.join(tmpdir(), 'metrics.jsonl');
  await appendLineDurable(file, '{"epoch":0}');
  const open = fs.promises.open.bind(fs.promises);
  const full = t.mock.method(fs.promises, 'open', async (...args: Parameters<typeof fs.promises.open>) => {
    const handle = await open(...args);
    handle.sync = () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, fsync'), { code: 'ENOSPC' }));
    return handle;
  });
  await assert.rejects(appendLineDurable(file, '{"epoch":1,"loss":0.5}'),
    /Could not append to .*metrics\.jsonl: the disk is full \(ENOSPC\); every line it held before is kept/);
  full.mock.restore();
  assert.equal(fs.readFileSync(file, 'utf8'), '{"epoch":0}\n');
  await appendLineDurable(file, '{"epoch":1}');
  assert.equal(fs.readFileSync(file, 'utf8'), '{"epoch":0}\n{"epoch":1}\n');
});

test('atomicWriteFileSync replaces the content and leaves no temp files behind', () => {
  const dir = tmpdir();
  const file = path.join(dir, 'cache.json');
  atomicWriteFileSync(file, 'old');
  atomicWriteFileSync(file, new TextEncoder().encode('new content'));
  assert.equal(fs.readFileSync(file, 'utf8'), 'new content');
  assert.deepEqual(fs.readdirSync(dir), ['cache.json']);
  assert.throws(() => atomicWriteFileSync(path.join(dir, 'nope', 'x.json'), 'x'), /nope/);
  assert.deepEqual(fs.readdirSync(dir), ['cache.json']);
});

test('appendLineDurableSync appends whole lines to an open log and refuses embedded newlines', () => {
  const file = path.join(tmpdir(), 'ratings.jsonl');
  fs.writeFileSync(file, '{"torn"');
  const fd = fs.openSync(file, 'a');
  try {
    appendLineDurableSync(fd, '', file);
    appendLineDurableSync(fd, '{"a":1}', file);
    assert.throws(() => appendLineDurableSync(fd, 'two\nlines', file), /ratings.jsonl.*newline/);
  } finally { fs.closeSync(fd); }
  assert.equal(fs.readFileSync(file, 'utf8'), '{"torn"\n{"a":1}\n');
});

test('resolveInside accepts nested relative paths, including ones not yet created', () => {
  const root = tmpdir();
  assert.equal(resolveInside(root, 'exp/images/0001.png'), path.join(root, 'exp', 'images', '0001.png'));
  assert.equal(resolveInside(root, './a/../b'), path.join(root, 'b'));
});

test('resolveInside rejects .., absolute paths and empty names', () => {
  const root = tmpdir();
  for (const bad of ['..', '../x', 'a/../../x', '/etc/passwd', 'C:\\Windows', '', 'a\0b']) {
    assert.throws(() => resolveInside(root, bad), PathEscapeError, `should reject ${JSON.stringify(bad)}`);
  }
});

test('resolveInside rejects a symlink that leads outside the root, existing or dangling', () => {
  const root = tmpdir();
  const outside = tmpdir();
  fs.symlinkSync(outside, path.join(root, 'escape'));
  assert.throws(() => resolveInside(root, 'escape/file.txt'), /symlink leads outside/);
  fs.symlinkSync(path.join(outside, 'not-yet'), path.join(root, 'dangling'));
  assert.throws(() => resolveInside(root, 'dangling/file.txt'), /symlink leads outside/);
});

test('resolveInside allows symlinks that stay inside, and a root reached through a symlink', () => {
  const real = tmpdir();
  fs.mkdirSync(path.join(real, 'data'));
  fs.symlinkSync(path.join(real, 'data'), path.join(real, 'alias'));
  assert.equal(resolveInside(real, 'alias/x'), path.join(real, 'alias', 'x'));
  const linkToRoot = path.join(tmpdir(), 'root-link');
  fs.symlinkSync(real, linkToRoot);
  assert.equal(resolveInside(linkToRoot, 'data/y'), path.join(linkToRoot, 'data', 'y'));
});

test('atomicWriteFile with replace: false creates a new file and refuses an existing one (EEXIST), leaving it as it was', async () => {
  const dir = tmpdir();
  const file = path.join(dir, 'export.safetensors');
  await atomicWriteFile(file, 'first', { replace: false });
  await assert.rejects(atomicWriteFile(file, 'second', { replace: false }), (e: NodeJS.ErrnoException) => e.code === 'EEXIST');
  assert.throws(() => atomicWriteFileSync(file, 'third', { replace: false }), (e: NodeJS.ErrnoException) => e.code === 'EEXIST');
  assert.equal(fs.readFileSync(file, 'utf8'), 'first');
  assert.deepEqual(fs.readdirSync(dir), ['export.safetensors']);
});

test('of writers racing to create one name with replace: false, exactly one wins', async () => {
  const dir = tmpdir();
  const file = path.join(dir, 'claimed');
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => atomicWriteFile(file, `writer ${i}`, { replace: false })));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  assert.match(fs.readFileSync(file, 'utf8'), /^writer \d$/);
  assert.deepEqual(fs.readdirSync(dir), ['claimed']);
});

test('writeFilesAtomicallySync: a failure while writing leaves every target as it was and no temp file', () => {
  const dir = tmpdir();
  const [model, data] = [path.join(dir, 'model.onnx'), path.join(dir, 'model.onnx.data')];
  writeFilesAtomicallySync([data, model], ([d, m]) => { assert.equal(d.write('weights'), 0); assert.equal(d.write('++'), 7); m.write('graph'); });
  assert.equal(fs.readFileSync(data, 'utf8'), 'weights++');
  assert.throws(() => writeFilesAtomicallySync([data, model], ([d]) => { d.write('half'); throw new Error('encoder failed'); }), /encoder failed/);
  assert.deepEqual([fs.readFileSync(data, 'utf8'), fs.readFileSync(model, 'utf8')], ['weights++', 'graph']);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['model.onnx', 'model.onnx.data']);
});

test('writeFilesAtomicallySync with replace: false: when a later target exists, the ones it created are removed again', () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'b'), 'kept');
  assert.throws(() => writeFilesAtomicallySync([path.join(dir, 'a'), path.join(dir, 'b')], ([a, b]) => { a.write('new a'); b.write('new b'); }, { replace: false }),
    (e: NodeJS.ErrnoException) => e.code === 'EEXIST');
  assert.deepEqual(fs.readdirSync(dir), ['b']);
  assert.equal(fs.readFileSync(path.join(dir, 'b'), 'utf8'), 'kept');
});

test('commitFileSync moves a finished download onto its name', () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'model.onnx.part'), 'bytes');
  commitFileSync(path.join(dir, 'model.onnx.part'), path.join(dir, 'model.onnx'));
  assert.deepEqual(fs.readdirSync(dir), ['model.onnx']);
  assert.equal(fs.readFileSync(path.join(dir, 'model.onnx'), 'utf8'), 'bytes');
});

test('resolveInsideOrUndefined answers undefined where resolveInside throws, and for a value that is no string', () => {
  const root = tmpdir();
  fs.symlinkSync(tmpdir(), path.join(root, 'out'));
  assert.equal(resolveInsideOrUndefined(root, 'a/b.png'), path.join(root, 'a', 'b.png'));
  for (const bad of ['../x.png', '/etc/passwd', 'out/x.png', 42, undefined]) assert.equal(resolveInsideOrUndefined(root, bad), undefined, String(bad));
});

// A disk with a few blocks left takes part of a write and reports no error; the rest must follow, or the line be taken back.
test('appendLineDurable writes the rest of a line the disk took only part of, and takes the part back when the rest is refused', async (t) => {
  const file = path.join(tmpdir(), 'metrics.jsonl');
  await appendLineDurable(file, '{"epoch":0}');
  const open = fs.promises.open.bind(fs.promises);
  let room = Infinity;
  const partial = t.mock.method(fs.promises, 'open', async (...args: Parameters<typeof fs.promises.open>) => {
    const handle = await open(...args);
    const write = handle.write.bind(handle) as (b: Uint8Array, offset: number, length: number) => Promise<{ bytesWritten: number }>;
    (handle as unknown as { write: typeof write }).write = async (b, offset, length) => {
      if (room <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      const n = Math.min(length, 5, room);
      room -= n;
      return write(b, offset, n);
    };
    return handle;
  });
  await appendLineDurable(file, '{"epoch":1,"loss":0.5}');
  assert.equal(fs.readFileSync(file, 'utf8'), '{"epoch":0}\n{"epoch":1,"loss":0.5}\n', 'five bytes at a time, the whole line');
  room = 7;
  await assert.rejects(appendLineDurable(file, '{"epoch":2,"loss":0.25}'), /disk is full \(ENOSPC\)/);
  partial.mock.restore();
  assert.equal(fs.readFileSync(file, 'utf8'), '{"epoch":0}\n{"epoch":1,"loss":0.5}\n', 'the refused line is taken back');
});
