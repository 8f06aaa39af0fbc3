import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainFailure, judge, verifyCudaProvider } from '../../../src/core/runtime/cudaVerify';

test('the verification graph runs in a child process and agrees with the CPU (here on the CPU provider)', { timeout: 60_000 }, async () => {
  const v = await verifyCudaProvider({ env: process.env, ortEntry: require.resolve('onnxruntime-node'), ep: 'cpu' });
  assert.equal(v.ok, true, v.message);
  assert.ok((v.counts?.CPUExecutionProvider ?? 0) >= 6, JSON.stringify(v.counts));
  assert.deepEqual(Object.keys(v.diffs!).sort(), ['conv', 'gemm', 'gemm16']);
});

test('a provider that did not load is explained by the library the loader could not find, as onnxruntime logs it', () => {
  const v = explainFailure({
    stdout: 'FAILED "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library"\n',
    stderr: '2026-12-06 [E:onnxruntime:onnxruntime-node, provider_bridge_ort.cc:2146 Create] /onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:1988 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to load library /x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: No such file or directory\n',
    code: 0,
  }, 'cuda');
  assert.equal(v.ok, false);
  assert.equal(v.missingLibrary, 'libcublasLt.so.13');
  assert.match(v.message, /^CUDA could not run: libcublasLt\.so\.13 was not found/);
  assert.match(explainFailure({ stdout: '', stderr: 'x: undefined symbol: cudnnGetVersion_v9\n', code: 1 }, 'cuda').message, /lacks the symbol cudnnGetVersion_v9, so a CUDA or cuDNN library of another version was loaded/);
  assert.match(explainFailure({ stdout: 'FAILED "CUDA failure 100: no CUDA-capable device is detected"\n', stderr: '', code: 0 }, 'cuda').message, /^CUDA could not run: CUDA failure 100: no CUDA-capable device is detected/);
  assert.match(explainFailure({ stdout: '', stderr: '', code: null }, 'cuda').message, /ended with code null and no result/);
});

test('a provider that ran is judged by where its nodes ran and how far it is from the CPU', () => {
  const ran = (d: number) => ({ stdout: `RESULT ${JSON.stringify({ diffs: { conv: 1e-4, gemm: d, gemm16: 1e-3 } })}\n`, stderr: '', code: 0 });
  const cuda = { CUDAExecutionProvider: 7, CPUExecutionProvider: 1 };
  assert.equal(judge(ran(1e-3), 'cuda', cuda).ok, true);
  const wrong = judge(ran(0.3), 'cuda', cuda);
  assert.equal(wrong.ok, false);
  assert.match(wrong.message, /output 'gemm' differs from the CPU by 0\.3 .*another onnxruntime version corrupts like this/);
  const nowhere = judge(ran(1e-3), 'cuda', { CPUExecutionProvider: 8 });
  assert.match(nowhere.message, /no node ran on cuda \(nodes: CPU 8\)/);
});
