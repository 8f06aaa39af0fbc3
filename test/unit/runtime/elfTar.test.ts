import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { cudaMajorOf, readElf, readOrtVersions } from '../../../src/core/runtime/elf';
import { extractFromTar } from '../../../src/core/runtime/tar';
import { ortBinDir } from '../../../src/core/runtime/cudaLibraries';
import { fakeCudaProvider, fakeElf } from './fakeElf';

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

test("the ELF reader gives a library's needed sonames, soname, machine and onnxruntime version", () => {
  const dir = tmp('elf-');
  try {
    const f = path.join(dir, 'p.so');
    fs.writeFileSync(f, fakeCudaProvider('1.29.0', 12));
    const info = readElf(f);
    assert.equal(info.machine, 62);
    assert.deepEqual(info.needed.slice(0, 4), ['libcublasLt.so.12', 'libcublas.so.12', 'libcurand.so.10', 'libcudart.so.12']);
    assert.equal(cudaMajorOf(info), 12);
    assert.deepEqual(readOrtVersions(f), ['1.29.0']);
    fs.writeFileSync(f, fakeElf({ soname: 'libx.so.1', strings: ['1.3.2', '13.0.1', 'v1.29.0'] }));
    assert.equal(readElf(f).soname, 'libx.so.1');
    assert.deepEqual(readOrtVersions(f), [], "zlib's 1.3.2, CUDA's 13.0.1 and a prefixed string are not onnxruntime versions");
    fs.writeFileSync(f, 'MZ not an ELF file at all, long enough to hold a header.................................');
    assert.throws(() => readElf(f), /p\.so is not an ELF shared library/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('the real onnxruntime core names its own release, as the provider check relies on', () => {
  const core = path.join(ortBinDir()!, 'libonnxruntime.so.1');
  if (process.platform !== 'linux' || process.arch !== 'x64') return;
  const version = (JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
  assert.deepEqual(readOrtVersions(core), [version]);
  assert.equal(readElf(core).soname, 'libonnxruntime.so.1');
});

/** A tar archive of `files` with ustar headers; names over 100 characters get a pax `path` record. */
function makeTar(files: Record<string, Buffer>): Buffer {
  const header = (name: string, size: number, type: string) => {
    const h = Buffer.alloc(512);
    h.write(name.slice(0, 99), 0, 'utf8');
    h.write('0000644\0', 100); h.write('0000000\0', 108); h.write('0000000\0', 116);
    h.write(size.toString(8).padStart(11, '0') + '\0', 124); h.write('00000000000\0', 136);
    h.write(type, 156); h.write('ustar\x0000', 257);
    h.write('        ', 148);
    let sum = 0; for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    return h;
  };
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
  const parts: Buffer[] = [];
  for (const [name, data] of Object.entries(files)) {
    if (name.length > 99) {
      const rec = ` path=${name}\n`;
      const body = Buffer.from(`${rec.length + String(rec.length + 2).length}${rec}`);
      parts.push(header('PaxHeader', body.length, 'x'), pad(body));
    }
    parts.push(header(name, data.length, '0'), pad(data));
  }
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

test('the tar reader extracts chosen entries from plain and gzipped archives, long pax names included', async () => {
  const dir = tmp('tar-');
  try {
    const long = `package/${'deep/'.repeat(25)}libonnxruntime_providers_cuda.so`;
    const big = Buffer.alloc(70_000, 7);
    const files = { 'package/package.json': Buffer.from('{}'), [long]: big, 'package/empty.so': Buffer.alloc(0) };
    for (const [name, bytes] of [['a.tar', makeTar(files)], ['a.tgz', zlib.gzipSync(makeTar(files))]] as const) {
      const f = path.join(dir, name);
      fs.writeFileSync(f, bytes);
      const out = path.join(dir, `${name}.out`);
      fs.mkdirSync(out);
      const got = await extractFromTar(f, (n) => (n.endsWith('.so') ? path.join(out, path.basename(n)) : undefined));
      assert.deepEqual(got, [long, 'package/empty.so']);
      assert.ok(fs.readFileSync(path.join(out, 'libonnxruntime_providers_cuda.so')).equals(big));
      assert.equal(fs.statSync(path.join(out, 'empty.so')).size, 0);
    }
    fs.writeFileSync(path.join(dir, 'cut.tar'), makeTar(files).subarray(0, 4000));
    await assert.rejects(extractFromTar(path.join(dir, 'cut.tar'), (n) => (n.endsWith('.so') ? path.join(dir, 'x.so') : undefined)), /ends inside an entry; the archive is truncated/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('the tar reader writes all of an entry when the disk takes each write only in part', async (t) => {
  const dir = tmp('tarpart-');
  try {
    const big = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    const f = path.join(dir, 'a.tar');
    fs.writeFileSync(f, makeTar({ 'package/lib.so': big }));
    // the module object itself (a namespace import's bindings cannot be replaced)
    const nodeFs = (await import('node:fs')).default;
    const write = nodeFs.writeSync.bind(nodeFs) as (fd: number, b: Buffer, o: number, l: number) => number;
    t.mock.method(nodeFs, 'writeSync', (fd: number, b: Buffer, o: number, l: number) => write(fd, b, o, Math.min(l, 1000)));
    await extractFromTar(f, (n) => (n.endsWith('.so') ? path.join(dir, 'lib.so') : undefined));
    t.mock.restoreAll();
    assert.ok(fs.readFileSync(path.join(dir, 'lib.so')).equals(big));
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test("the tar reader reads what the real npm pack writes", async () => {
  const dir = tmp('tarnpm-');
  try {
    const pkg = path.join(dir, 'pkg');
    fs.mkdirSync(path.join(pkg, 'Plugins', 'Linux', 'x64'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'p', version: '1.0.0' }));
    fs.writeFileSync(path.join(pkg, 'Plugins', 'Linux', 'x64', 'libonnxruntime_providers_shared.so'), 'abc');
    const tgz = path.join(dir, execFileSync('npm', ['pack', pkg, '--silent', '--pack-destination', dir], { encoding: 'utf8' }).trim());
    const names: string[] = [];
    await extractFromTar(tgz, (n) => { names.push(n); return n.endsWith('.so') ? path.join(dir, 'got.so') : undefined; });
    assert.deepEqual(names.sort(), ['package/Plugins/Linux/x64/libonnxruntime_providers_shared.so', 'package/package.json']);
    assert.equal(fs.readFileSync(path.join(dir, 'got.so'), 'utf8'), 'abc');
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
