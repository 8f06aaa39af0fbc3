import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jobProviders } from '../../../src/core/runtime/jobProviders';
import { providerSetting } from '../../../src/worker/handlers/params';
import { listBackends, type BackendInfo } from '../../../src/core/runtime/providers';

// What onnxruntime-node 1.30 lists on a Linux machine without the CUDA provider library.
const linux: BackendInfo[] = [
  { name: 'cpu', bundled: true, installed: true }, { name: 'webgpu', bundled: true, installed: true },
  { name: 'cuda', bundled: false, installed: false }, { name: 'tensorrt', bundled: false, installed: false },
];
const noAdapter = 'Failed to get a WebGPU adapter: No supported adapters';

test('"auto" on Linux tries WebGPU before the CPU, and each opened model is reported with why the GPU was not used', () => {
  const lines: string[] = [];
  const jp = jobProviders('auto', linux, (l) => lines.push(l), 'linux');
  assert.deepEqual(jp.candidates, ['webgpu', 'cpu']);
  jp.onOpened!('unet/model.onnx', { ep: 'cpu', failures: [{ ep: 'webgpu', error: noAdapter }] });
  assert.deepEqual(lines, [
    `unet/model.onnx: execution provider: cpu (cuda skipped: the CUDA provider library is not installed (run 'ddpo install-cuda'); webgpu failed: ${noAdapter})`,
  ]);
});

test('an explicit provider this machine lacks falls back to the CPU and says how to get it', () => {
  const lines: string[] = [];
  const jp = jobProviders('cuda', linux, (l) => lines.push(l), 'linux');
  assert.deepEqual(jp.candidates, ['cpu']);
  jp.onOpened!('training graph', { ep: 'cpu', failures: [] });
  assert.match(lines[0], /^training graph: execution provider: cpu \(cuda skipped: .*ddpo install-cuda/);
  assert.deepEqual(jobProviders('auto', linux, () => undefined, 'win32').candidates, ['webgpu', 'cpu'], 'Windows without DirectML still tries WebGPU');
});

test('the cache key follows what sessions would open on: same plan, same key; CPU-only differs', () => {
  const key = (s: 'auto' | 'webgpu' | 'cpu') => jobProviders(s, linux, () => undefined, 'linux').key;
  assert.equal(key('auto'), key('webgpu'));
  assert.notEqual(key('auto'), key('cpu'));
});

test('listed but unbundled providers count only when their library sits next to the binding', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-ep-'));
  const listed = [{ name: 'cpu', bundled: true }, { name: 'cuda', bundled: false }, { name: 'tensorrt', bundled: false }];
  const installed = () => listBackends(listed, dir).filter((b) => b.installed).map((b) => b.name);
  assert.deepEqual(installed(), ['cpu']);
  fs.writeFileSync(path.join(dir, process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so'), '');
  assert.deepEqual(installed(), ['cpu', 'cuda']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a request with an unknown executionProvider is refused naming the valid values', () => {
  assert.equal(providerSetting({ executionProvider: 'webgpu' }), 'webgpu');
  assert.equal(providerSetting({}), undefined);
  assert.throws(() => providerSetting({ executionProvider: 'gpu' }), /"executionProvider" must be one of auto, cuda, webgpu, dml, coreml, cpu, got "gpu"/);
});
