import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { AddressInfo } from 'node:net';
import { checkCuda, installCudaProvider, DownloadProgress } from '../../../src/core/runtime/cudaInstall';
import { listZip, readZipEntry } from '../../../src/core/runtime/zip';

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
// incompressible, so the download spans several chunks and progress events
const cudaLib = randomBytes(300_000);
const nupkg = makeZip({
  [`${native}libonnxruntime_providers_cuda.so`]: cudaLib,
  [`${native}libonnxruntime_providers_shared.so`]: Buffer.from('shared'),
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

test('the ZIP reader lists entries and inflates deflated and stored ones', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-'));
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

test('install-cuda resolves the package on a NuGet feed, downloads it with progress and installs the provider libraries', async () => {
  const binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ortbin-'));
  try {
    const progress: DownloadProgress[] = [];
    const files = await installCudaProvider({ version: '1.30.0', binDir, feedIndex: feed, onProgress: (p) => progress.push(p) });
    assert.deepEqual(files.map((f) => path.basename(f)), ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']);
    assert.ok(fs.readFileSync(path.join(binDir, 'libonnxruntime_providers_cuda.so')).equals(cudaLib));
    assert.equal(fs.readFileSync(path.join(binDir, 'libonnxruntime_providers_shared.so'), 'utf8'), 'shared');
    assert.ok(!fs.existsSync(path.join(binDir, 'libonnxruntime_providers_tensorrt.so')));
    assert.ok(progress.length > 1, `progress events: ${progress.length}`);
    assert.deepEqual(progress.at(-1), { received: nupkg.length, total: nupkg.length });
    assert.ok(requests.includes('/blob/pkg'), 'follows the redirect to the package blob');
    await assert.rejects(installCudaProvider({ version: '1.31.0', binDir, feedIndex: feed }), /1\.31\.0 is not on .* \(it has 1\.29\.0, 1\.30\.0\); the provider must match onnxruntime-node 1\.31\.0 exactly/);
  } finally { fs.rmSync(binDir, { recursive: true, force: true }); }
});

test('an unreachable feed fails with the address it tried', async () => {
  await assert.rejects(installCudaProvider({ version: '1.30.0', binDir: os.tmpdir(), feedIndex: 'http://127.0.0.1:1/v3/index.json' }), /GET http:\/\/127\.0\.0\.1:1\/v3\/index\.json failed: .*ECONNREFUSED/);
});

const smi = (cuda: string) => (cmd: string, args: string[]) => {
  if (cmd === 'nvidia-smi') return args[0] === '-L' ? 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: x)\n' : `| NVIDIA-SMI 580.1   Driver Version: 580.1   CUDA Version: ${cuda} |`;
  if (cmd === 'ldconfig') return '\tlibcudart.so.13 (libc6,x86-64) => /usr/lib/libcudart.so.13\n';
  throw Object.assign(new Error('not found'), { code: 'ENOENT' });
};

test('the CUDA check explains a missing driver, an old driver, CUDA 13-only libraries and unsupported platforms', () => {
  const none = checkCuda(() => { throw new Error('ENOENT'); }, 'linux', 'x64', []);
  assert.equal(none.driver, false);
  assert.match(none.problems[0], /no NVIDIA driver.*use --ep webgpu/);
  const old = checkCuda(smi('11.8'), 'linux', 'x64', []);
  assert.match(old.problems[0], /supports CUDA 11\.8.*needs CUDA 12: update the driver/);
  const cuda13 = checkCuda(smi('13.0'), 'linux', 'x64', []);
  assert.deepEqual(cuda13.problems, []);
  assert.equal(cuda13.gpu, 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: x)');
  assert.match(cuda13.warnings[0], /libcudart\.so\.12, libcublas\.so\.12, libcudnn\.so\.9 \(CUDA 13 libraries are present, but this onnxruntime build links against CUDA 12/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cudalibs-'));
  try {
    for (const l of ['libcudart.so.12', 'libcublas.so.12', 'libcudnn.so.9']) fs.writeFileSync(path.join(dir, l), '');
    assert.deepEqual(checkCuda(smi('12.4'), 'linux', 'x64', [dir]).warnings, []);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  assert.match(checkCuda(smi('12.4'), 'win32', 'x64').problems[0], /only for linux-x64 .*--ep dml/);
});
