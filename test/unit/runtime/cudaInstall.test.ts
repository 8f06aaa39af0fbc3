import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { AddressInfo } from 'node:net';
import { checkDriver, checkProvider, chooseCudaMajor, installCuda, type InstallIO } from '../../../src/core/runtime/cudaInstall';
import { CUDA_PACKAGE, NUGET_CUDA12_INDEX, NUGET_INDEX, officialFeed, parseSource, stageProvider, type DownloadProgress } from '../../../src/core/runtime/cudaSource';
import { readCudaRecord } from '../../../src/core/runtime/cudaLibraries';
import type { ChildOutput } from '../../../src/core/runtime/cudaVerify';
import { fakeCudaProvider, fakeSharedProvider } from './fakeElf';
import { listZip, readZipEntry } from '../../../src/core/zip';

/** A minimal ZIP (deflated or stored entries; CRCs left 0, which the reader does not check). */
function makeZip(files: Record<string, Buffer>, deflate = true): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(files)) {
    const body = deflate ? zlib.deflateRawSync(data) : data;
    const n = Buffer.from(name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(deflate ? 8 : 0, 8);
    lh.writeUInt32LE(body.length, 18); lh.writeUInt32LE(data.length, 22); lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(deflate ? 8 : 0, 10);
    ch.writeUInt32LE(body.length, 20); ch.writeUInt32LE(data.length, 24); ch.writeUInt16LE(n.length, 28); ch.writeUInt32LE(offset, 42);
    locals.push(lh, n, body);
    central.push(ch, n);
    offset += 30 + n.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(central.length / 2, 8); end.writeUInt16LE(central.length / 2, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

const native = 'runtimes/linux-x64/native/';
// a provider library of onnxruntime 1.30.0, padded with incompressible bytes so the download spans several chunks
const cudaLib = Buffer.concat([fakeCudaProvider('1.30.0'), randomBytes(300_000)]);
const nupkg = makeZip({
  [`${native}libonnxruntime_providers_cuda.so`]: cudaLib,
  [`${native}libonnxruntime_providers_shared.so`]: fakeSharedProvider(),
  [`${native}libonnxruntime_providers_tensorrt.so`]: Buffer.from('trt'),
  'Microsoft.ML.OnnxRuntime.Gpu.Linux.nuspec': Buffer.from('<package/>'),
});
let server: http.Server;
let feed = '';
const requests: string[] = [];
before(async () => {
  server = http.createServer((req, res) => {
    requests.push(req.url!);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (req.url === '/v3/index.json') return void res.end(JSON.stringify({ resources: [{ '@id': `${base}/flat/`, '@type': 'PackageBaseAddress/3.0.0' }] }));
    if (req.url === '/flat/microsoft.ml.onnxruntime.gpu.linux/index.json') return void res.end(JSON.stringify({ versions: ['1.29.0', '1.30.0'] }));
    if (req.url === '/flat/microsoft.ml.onnxruntime.gpu.linux/1.30.0/microsoft.ml.onnxruntime.gpu.linux.1.30.0.nupkg') {
      res.writeHead(302, { location: '/blob/pkg' });
      return void res.end();
    }
    if (req.url === '/blob/pkg') {
      res.writeHead(200, { 'content-length': nupkg.length });
      // in pieces with pauses, so progress arrives more than once
      let i = 0;
      const more = () => { if (i >= nupkg.length) return void res.end(); res.write(nupkg.subarray(i, i += 100_000)); setTimeout(more, 5); };
      return more();
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  feed = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3/index.json`;
});
after(() => server?.close());

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

test('the ZIP reader lists entries and inflates deflated and stored ones', () => {
  const dir = tmp('zip-');
  try {
    for (const deflate of [true, false]) {
      const f = path.join(dir, `a${deflate}.zip`);
      fs.writeFileSync(f, makeZip({ 'x/one.txt': Buffer.from('hello'), 'two.bin': cudaLib }, deflate));
      const entries = listZip(f);
      assert.deepEqual(entries.map((e) => [e.name, e.size]), [['x/one.txt', 5], ['two.bin', cudaLib.length]]);
      assert.equal(readZipEntry(f, entries[0]).toString(), 'hello');
      assert.ok(readZipEntry(f, entries[1]).equals(cudaLib));
    }
    fs.writeFileSync(path.join(dir, 'bad.zip'), 'not a zip');
    assert.throws(() => listZip(path.join(dir, 'bad.zip')), /not a ZIP archive.*truncated/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('install-cuda resolves the package on a NuGet feed, downloads it with progress and stages the provider libraries', async () => {
  const stageDir = tmp('ortstage-');
  try {
    const progress: DownloadProgress[] = [];
    const staged = await stageProvider({ kind: 'nuget', feed }, { version: '1.30.0', stageDir, onProgress: (p) => progress.push(p) });
    assert.deepEqual(Object.keys(staged.files).sort(), ['cuda', 'shared', 'tensorrt']);
    assert.ok(fs.readFileSync(staged.files.cuda!).equals(cudaLib));
    assert.ok(fs.readFileSync(staged.files.shared!).equals(fakeSharedProvider()));
    assert.ok(progress.length > 1, `progress events: ${progress.length}`);
    assert.deepEqual(progress.at(-1), { received: nupkg.length, total: nupkg.length });
    assert.ok(requests.includes('/blob/pkg'), 'follows the redirect to the package blob');
    assert.deepEqual(fs.readdirSync(stageDir).filter((f) => f.endsWith('.nupkg')), [], 'the package is not kept');
    await assert.rejects(stageProvider({ kind: 'nuget', feed }, { version: '1.31.0', stageDir }), /1\.31\.0 is not on .* \(it has 1\.29\.0, 1\.30\.0\); the provider must match onnxruntime-node 1\.31\.0 exactly/);
  } finally { fs.rmSync(stageDir, { recursive: true, force: true }); }
});

test('an unreachable feed fails with the address it tried', async () => {
  await assert.rejects(stageProvider({ kind: 'nuget', feed: 'http://127.0.0.1:1/v3/index.json' }, { version: '1.30.0', stageDir: os.tmpdir() }), /GET http:\/\/127\.0\.0\.1:1\/v3\/index\.json failed: .*ECONNREFUSED/);
});

test("onnxruntime's official packages: the CUDA 13 build on nuget.org, the CUDA 12 build on onnxruntime's own feed", () => {
  assert.equal(CUDA_PACKAGE, 'Microsoft.ML.OnnxRuntime.Gpu.Linux');
  assert.equal(officialFeed(13), NUGET_INDEX);
  assert.equal(officialFeed(12), NUGET_CUDA12_INDEX);
  assert.match(NUGET_CUDA12_INDEX, /onnxruntime-cuda-12\/nuget\/v3\/index\.json$/);
});

const smi = (cuda: string) => (cmd: string, args: string[]) => {
  if (cmd === 'nvidia-smi') return args[0] === '-L' ? 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: x)\n' : `| NVIDIA-SMI 580.1   Driver Version: 580.1   CUDA Version: ${cuda} |`;
  throw Object.assign(new Error('not found'), { code: 'ENOENT' });
};

test('the driver check explains a missing driver, an old driver and unsupported platforms', () => {
  const none = checkDriver(() => { throw new Error('ENOENT'); }, 'linux', 'x64');
  assert.equal(none.driver, false);
  assert.match(none.problems[0], /no NVIDIA driver.*use --ep webgpu/);
  const old = checkDriver(smi('11.8'), 'linux', 'x64');
  assert.match(old.problems[0], /supports CUDA 11\.8.*needs CUDA 12 or 13: update the driver/);
  const cuda13 = checkDriver(smi('13.0'), 'linux', 'x64');
  assert.deepEqual(cuda13.problems, []);
  assert.equal(cuda13.driverCuda, '13.0');
  assert.equal(cuda13.gpu, 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: x)');
  assert.match(checkDriver(smi('12.4'), 'win32', 'x64').problems[0], /linux-x64 only .*--ep dml/);
});

test("CUDA 12 or 13 is picked from the driver's CUDA Version and the runtimes installed", () => {
  const none = () => false;
  assert.deepEqual(chooseCudaMajor('13.0', none), { major: 13, why: 'the driver supports CUDA 13.0' });
  assert.deepEqual(chooseCudaMajor('12.8', none), { major: 12, why: 'the driver supports CUDA 12.8' });
  // a CUDA 13 driver with only CUDA 12's runtime (e.g. PyTorch cu128 wheels) gets the build that loads as it is
  assert.deepEqual(chooseCudaMajor('13.0', (m) => m === 12), { major: 12, why: "the driver supports CUDA 13.0 and only CUDA 12's runtime (libcudart.so.12) is installed" });
  assert.equal((chooseCudaMajor('13.0', () => true) as { major: number }).major, 13);
  assert.deepEqual(chooseCudaMajor('12.4', none, 13), { problem: '--cuda 13: the driver supports CUDA 12.4; update the driver or choose --cuda 12' });
  assert.deepEqual(chooseCudaMajor('13.0', none, 12), { major: 12, why: 'asked for with --cuda' });
  assert.match((chooseCudaMajor('11.8', none) as { problem: string }).problem, /needs CUDA 12 or 13/);
  assert.equal((chooseCudaMajor(undefined, none) as { major: number }).major, 13, 'no driver (--force): the newest build');
});

test('a provider is checked against onnxruntime-node: another release, an unreadable version or a CUDA build the driver cannot run is refused', () => {
  const dir = tmp('ortcheck-');
  try {
    const lib = (name: string, bytes: Buffer) => { const f = path.join(dir, name); fs.writeFileSync(f, bytes); return f; };
    const shared = lib('shared.so', fakeSharedProvider());
    const ok = checkProvider({ files: { cuda: lib('a.so', fakeCudaProvider('1.29.0')), shared }, origin: 'A' }, '1.29.0', '13.0');
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.version, '1.29.0');
    assert.equal(ok.cuda, 13);
    const wrong = checkProvider({ files: { cuda: lib('b.so', fakeCudaProvider('1.30.0')), shared }, origin: 'B' }, '1.29.0', '13.0');
    assert.match(wrong.problems[0], /from B is from onnxruntime 1\.30\.0, but onnxruntime-node here is 1\.29\.0: .*loads and then corrupts memory\. Install the provider of onnxruntime 1\.29\.0/);
    const unversioned = checkProvider({ files: { cuda: lib('c.so', fakeSharedProvider()), shared }, origin: 'C' }, '1.29.0');
    assert.match(unversioned.problems[0], /no onnxruntime version string in .*c\.so/);
    const notElf = checkProvider({ files: { cuda: lib('d.so', Buffer.from('text')), shared }, origin: 'D' }, '1.29.0');
    assert.match(notElf.problems[0], /d\.so is not an ELF shared library/);
    const newer = checkProvider({ files: { cuda: lib('e.so', fakeCudaProvider('1.29.0', 13)), shared }, origin: 'E' }, '1.29.0', '12.4');
    assert.match(newer.problems[0], /CUDA 13 build but the driver supports CUDA 12\.4: update the driver \(R580 or newer\) or install the CUDA 12 build \(--cuda 12\)/);
    assert.match(checkProvider({ files: { cuda: lib('f.so', fakeCudaProvider('1.29.0')) }, origin: 'F' }, '1.29.0').problems[0], /F has no libonnxruntime_providers_shared\.so/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('--from reads an npm spec, a folder, a provider .so or an archive, and says what it cannot read', () => {
  const dir = tmp('ortfrom-');
  try {
    fs.writeFileSync(path.join(dir, 'libonnxruntime_providers_cuda.so'), '');
    fs.writeFileSync(path.join(dir, 'p.nupkg'), '');
    assert.deepEqual(parseSource('npm:com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9'), { kind: 'npm', spec: 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9' });
    assert.deepEqual(parseSource(dir), { kind: 'dir', dir });
    assert.deepEqual(parseSource(path.join(dir, 'libonnxruntime_providers_cuda.so')), { kind: 'dir', dir });
    assert.deepEqual(parseSource(path.join(dir, 'p.nupkg')), { kind: 'archive', file: path.join(dir, 'p.nupkg') });
    assert.throws(() => parseSource(path.join(dir, 'nope.tgz')), /no such file or folder \(for an npm package write npm:NAME@VERSION\)/);
    fs.writeFileSync(path.join(dir, 'x.txt'), '');
    assert.throws(() => parseSource(path.join(dir, 'x.txt')), /not a folder, a provider \.so or an archive/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

/** An npm package laid out like com.github.asus4.onnxruntime.linux-x64-gpu, packed by the real `npm pack` (no network). */
function npmPackage(dir: string, version: string): string {
  const pkg = path.join(dir, 'pkg');
  const lib = path.join(pkg, 'Plugins', 'Linux', 'x64');
  fs.mkdirSync(lib, { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'fake-ort-gpu', version: '0.0.1' }));
  fs.writeFileSync(path.join(lib, 'libonnxruntime_providers_cuda.so'), fakeCudaProvider(version));
  fs.writeFileSync(path.join(lib, 'libonnxruntime_providers_shared.so'), fakeSharedProvider());
  const out = path.join(dir, 'packed');
  fs.mkdirSync(out);
  const name = execFileSync('npm', ['pack', pkg, '--silent', '--pack-destination', out], { encoding: 'utf8' }).trim();
  return path.join(out, name);
}

/** A machine for {@link installCuda}: a CUDA 13 driver, Python wheels and toolkit absent, and what it printed. */
function machine(root: string) {
  const lines: string[] = [];
  const io: InstallIO = { out: (l) => lines.push(l), err: (l) => lines.push(`ERR ${l}`), progress: () => {} };
  const exec = (cmd: string, args: string[]) => {
    if (cmd === 'nvidia-smi') return smi('13.0')(cmd, args);
    if (cmd.endsWith('ldconfig')) return '';
    throw new Error(`${cmd}: not found`);
  };
  const binDir = path.join(root, 'ort', 'bin');
  fs.mkdirSync(binDir, { recursive: true });
  const child: ChildOutput = {
    stdout: 'FAILED "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library"\n',
    stderr: `[E:onnxruntime:, provider_bridge_ort.cc:2146 Create] Failed to load library ${binDir}/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: No such file or directory\n`,
    code: 0,
  };
  const base = { ortVersion: '1.29.0', binDir, ortEntry: 'unused', exec, env: { PATH: '' }, search: { pythons: [], systemDirs: [], toolkits: [] }, runChild: async () => child };
  return { lines, io, binDir, base };
}

test('install-cuda --from npm:SPEC installs a matching provider, records where its libraries are, and fails the verification naming the missing library', async () => {
  const root = tmp('ortnpm-');
  try {
    const tgz = npmPackage(root, '1.29.0');
    const { lines, io, binDir, base } = machine(root);
    const wheel = path.join(root, 'site-packages', 'nvidia', 'cu13', 'lib');
    fs.mkdirSync(wheel, { recursive: true });
    for (const so of ['libcudart.so.13', 'libcurand.so.10']) fs.writeFileSync(path.join(wheel, so), '');
    const packed: string[] = [];
    const code = await installCuda({
      ...base, from: 'npm:fake-ort-gpu@0.0.1', env: { PATH: '', LD_LIBRARY_PATH: wheel },
      npmPack: (spec, dir) => { packed.push(spec); fs.copyFileSync(tgz, path.join(dir, 'fake.tgz')); return 'fake.tgz'; },
    }, io);
    assert.equal(code, 1, lines.join('\n'));
    assert.deepEqual(packed, ['fake-ort-gpu@0.0.1']);
    assert.ok(fs.readFileSync(path.join(binDir, 'libonnxruntime_providers_cuda.so')).equals(fakeCudaProvider('1.29.0')));
    assert.ok(fs.existsSync(path.join(binDir, 'libonnxruntime_providers_shared.so')));
    const text = lines.join('\n');
    assert.match(text, /onnxruntime 1\.29\.0 \(read from the library; onnxruntime-node here is 1\.29\.0\), CUDA 13 build/);
    assert.match(text, new RegExp(`libcudart\\.so\\.13 → ${wheel}/libcudart\\.so\\.13 \\(LD_LIBRARY_PATH\\)`));
    assert.match(text, /ERR {3}libcublasLt\.so\.13 NOT FOUND — CUDA 13: pip install nvidia-cublas/);
    assert.match(text, /ERR {3}libcudnn\.so\.9 NOT FOUND — cuDNN 9: pip install nvidia-cudnn-cu13/);
    assert.match(text, new RegExp(`The worker and ddpo put ${wheel} on LD_LIBRARY_PATH when they start`));
    assert.match(text, /ERR CUDA could not run: libcublasLt\.so\.13 was not found/);
    assert.deepEqual(readCudaRecord(binDir), {
      schemaVersion: 1, onnxruntime: '1.29.0', cuda: 13, source: 'npm:fake-ort-gpu@0.0.1', libraryDirs: [wheel],
      missing: ['libcublasLt.so.13', 'libcublas.so.13', 'libcuda.so.1', 'libcudnn.so.9'],
    });
  } finally { fs.rmSync(root, { recursive: true, force: true }); }
});

test('install-cuda refuses a provider of another onnxruntime release and installs nothing', async () => {
  const root = tmp('ortwrong-');
  try {
    const { lines, io, binDir, base } = machine(root);
    const code = await installCuda({ ...base, from: npmPackage(root, '1.30.0') }, io);
    assert.equal(code, 1);
    assert.match(lines.join('\n'), /ERR refused: libonnxruntime_providers_cuda\.so from .*\.tgz is from onnxruntime 1\.30\.0, but onnxruntime-node here is 1\.29\.0/);
    assert.deepEqual(fs.readdirSync(binDir), []);
  } finally { fs.rmSync(root, { recursive: true, force: true }); }
});

test('install-cuda from the NuGet feed picks the CUDA 13 build for a CUDA 13 driver, and exits 0 once the verification passes', async () => {
  const root = tmp('ortnuget-');
  try {
    const { lines, io, binDir, base } = machine(root);
    // a child that ran the graph: its profile names the provider of each node (one Softmax left to the CPU)
    const runChild = async (_script: string, args: string[]) => {
      const prefix = (JSON.parse(args[0]) as string[])[2];
      const node = (name: string, provider: string) => ({ cat: 'Node', name: `${name}_kernel_time`, args: { provider, op_name: name } });
      fs.writeFileSync(`${prefix}_1.json`, JSON.stringify([node('Conv', 'CUDAExecutionProvider'), node('MatMul', 'CUDAExecutionProvider'), node('Softmax', 'CPUExecutionProvider')]));
      return { stdout: 'RESULT {"diffs":{"conv":0.0001,"gemm":0.0004,"gemm16":0.001}}\n', stderr: '', code: 0 };
    };
    // the feed serves 1.30.0
    const code = await installCuda({ ...base, ortVersion: '1.30.0', feed, runChild }, io);
    const text = lines.join('\n');
    assert.match(text, /NVIDIA driver: CUDA 13\.0, GPU 0: NVIDIA H100/);
    assert.match(text, /CUDA 13 build: the driver supports CUDA 13\.0/);
    assert.match(text, /installed libonnxruntime_providers_shared\.so, libonnxruntime_providers_cuda\.so into/);
    assert.ok(!fs.existsSync(path.join(binDir, 'libonnxruntime_providers_tensorrt.so')), 'TensorRT only with --tensorrt');
    assert.match(text, /verified: a Conv, float32 and float16 MatMuls and a Softmax ran on cuda \(nodes: CUDA 2, CPU 1\) and agree with the CPU within 1\.0e-3\. Use it with --ep cuda/);
    assert.equal(code, 0, text);
  } finally { fs.rmSync(root, { recursive: true, force: true }); }
});

test('install-cuda stops at a missing driver unless --force', async () => {
  const root = tmp('ortnodrv-');
  try {
    const { lines, io, base } = machine(root);
    const exec = () => { throw new Error('nvidia-smi: not found'); };
    assert.equal(await installCuda({ ...base, exec, from: root }, io), 1);
    assert.match(lines.join('\n'), /NVIDIA driver: not found\nERR cannot use CUDA: no NVIDIA driver found/);
    assert.ok(!lines.some((l) => l.startsWith('provider:')), 'nothing fetched');
  } finally { fs.rmSync(root, { recursive: true, force: true }); }
});
