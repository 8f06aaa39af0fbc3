import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chooseExecutionProvider, usableBackends } from '../../../src/worker/ep';

test('"auto" prefers an installed native GPU provider and otherwise uses the CPU, never WebGPU', () => {
  assert.equal(chooseExecutionProvider('auto', ['cpu', 'webgpu']), 'cpu');
  assert.equal(chooseExecutionProvider('auto', ['cpu', 'webgpu', 'cuda']), 'cuda');
  assert.equal(chooseExecutionProvider('auto', ['cpu', 'dml']), 'dml');
});

test('an explicit provider that is not available fails with the usable ones and the setting to change', () => {
  assert.equal(chooseExecutionProvider('webgpu', ['cpu', 'webgpu']), 'webgpu');
  assert.throws(() => chooseExecutionProvider('cuda', ['cpu', 'webgpu']), /"cuda" is not available.*usable: cpu, webgpu.*ddpoStudio\.executionProvider/);
});

test('listed but unbundled providers count only when their library sits next to the binding', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-ep-'));
  const listed = [{ name: 'cpu', bundled: true }, { name: 'cuda', bundled: false }, { name: 'tensorrt', bundled: false }];
  assert.deepEqual(usableBackends(listed, dir), { usable: ['cpu'], missing: ['cuda', 'tensorrt'] });
  fs.writeFileSync(path.join(dir, process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so'), '');
  assert.deepEqual(usableBackends(listed, dir), { usable: ['cpu', 'cuda'], missing: ['tensorrt'] });
});
