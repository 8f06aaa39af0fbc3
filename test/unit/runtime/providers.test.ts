import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as ort from 'onnxruntime-node';
import { chooseExecutionProviders, describeProviderChoice, openWithFallback, BackendInfo } from '../../../src/core/runtime/providers';
import { describePlacement, parseNodePlacement } from '../../../src/core/runtime/placement';
import { needsFixture, referenceSd } from '../fixtures';

const linuxNoCuda: BackendInfo[] = [
  { name: 'cpu', bundled: true }, { name: 'webgpu', bundled: true }, { name: 'cuda', bundled: false, installed: false }, { name: 'tensorrt', bundled: false, installed: false },
];

test('auto on Linux tries CUDA first when its library is installed, then WebGPU, then CPU', () => {
  const withCuda = linuxNoCuda.map((b) => (b.name === 'cuda' ? { ...b, installed: true } : b));
  assert.deepEqual(chooseExecutionProviders('auto', 'linux', withCuda).candidates, ['cuda', 'webgpu', 'cpu']);
  const plan = chooseExecutionProviders('auto', 'linux', linuxNoCuda);
  assert.deepEqual(plan.candidates, ['webgpu', 'cpu']);
  assert.match(plan.skipped[0].reason, /ddpo install-cuda/);
});

test('auto on Windows prefers DirectML and on macOS CoreML, each before WebGPU', () => {
  const win = [{ name: 'cpu', bundled: true }, { name: 'dml', bundled: true }, { name: 'webgpu', bundled: true }];
  assert.deepEqual(chooseExecutionProviders('auto', 'win32', win).candidates, ['dml', 'webgpu', 'cpu']);
  const mac = [{ name: 'cpu', bundled: true }, { name: 'coreml', bundled: true }, { name: 'webgpu', bundled: true }];
  assert.deepEqual(chooseExecutionProviders('auto', 'darwin', mac).candidates, ['coreml', 'webgpu', 'cpu']);
  // on an NVIDIA machine with the CUDA provider beside onnxruntime-node, Windows tries it before DirectML
  const winCuda = [...win, { name: 'cuda', bundled: false, installed: true }];
  assert.deepEqual(chooseExecutionProviders('auto', 'win32', winCuda).candidates, ['cuda', 'dml', 'webgpu', 'cpu']);
  const winNoLib = chooseExecutionProviders('auto', 'win32', [...win, { name: 'cuda', bundled: false, installed: false }]);
  assert.deepEqual(winNoLib.candidates, ['dml', 'webgpu', 'cpu']);
  assert.match(winNoLib.skipped[0].reason, /CUDA provider library \(onnxruntime_providers_cuda\) is not installed beside onnxruntime-node/);
  // a build without WebGPU on macOS still gets CoreML, and says why WebGPU is missing
  const plan = chooseExecutionProviders('auto', 'darwin', mac.filter((b) => b.name !== 'webgpu'));
  assert.deepEqual(plan.candidates, ['coreml', 'cpu']);
  assert.match(plan.skipped[0].reason, /no 'webgpu' backend/);
});

test('an explicit choice tries only that provider, then CPU; "cpu" is just CPU', () => {
  assert.deepEqual(chooseExecutionProviders('webgpu', 'linux', linuxNoCuda).candidates, ['webgpu', 'cpu']);
  assert.deepEqual(chooseExecutionProviders('cpu', 'linux', linuxNoCuda), { candidates: ['cpu'], skipped: [] });
  assert.deepEqual(chooseExecutionProviders('dml', 'linux', linuxNoCuda).candidates, ['cpu']);
});

test('a provider that fails to initialise falls back to the next, and the reason is reported', async () => {
  const tried: unknown[] = [];
  const fake = async (_m: string | Uint8Array, o: ort.InferenceSession.SessionOptions) => {
    tried.push(o.executionProviders);
    if (o.executionProviders![0] === 'webgpu') {
      throw new Error('/onnxruntime_src/webgpu_context.cc:136 adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters');
    }
    return { inputNames: ['x'] } as unknown as ort.InferenceSession;
  };
  const plan = chooseExecutionProviders('auto', 'linux', linuxNoCuda);
  const opened = await openWithFallback('m.onnx', plan.candidates, (ep) => ({ graphOptimizationLevel: ep === 'cpu' ? 'all' : 'extended' }), fake);
  assert.equal(opened.ep, 'cpu');
  assert.deepEqual(tried, [['webgpu', 'cpu'], ['cpu']]);
  const line = describeProviderChoice(plan, opened);
  assert.match(line, /execution provider: cpu/);
  assert.match(line, /webgpu failed: Failed to get a WebGPU adapter: No supported adapters/);
  assert.match(line, /cuda skipped/);
  await assert.rejects(openWithFallback('m.onnx', ['webgpu'], () => ({}), fake), /Could not open m\.onnx on any execution provider:\n {2}webgpu: Failed to get a WebGPU adapter/);
});

const V = (s: string) => `2026-11-26 17:12:11.8 [V:onnxruntime:placement, session_state.cc:1380 VerifyEachNodeIsAssignedToAnEp]${s}`;

test('node placement is read from the verbose session log, listing nodes that fell back to the CPU', () => {
  const mixed = [
    '[I:onnxruntime:, webgpu_execution_provider.cc:99 GetCapability] webgpu kernel not found in registries for Op type: Range',
    V(' Node placements'),
    V('  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 1650'),
    V('   Conv (/conv_in/Conv)'),
    V('  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2'),
    V('   Range (/time_proj/Range)'),
    V('   Shape (/Shape_3)'),
    '2026-11-26 [V:onnxruntime:placement, session_state.cc:186 CreateGraphInfo] SaveMLValueNameIndexMapping',
    V('   Later (unrelated)'),
  ].join('\n');
  const p = parseNodePlacement(mixed)!;
  assert.deepEqual(p.counts, { WebGpuExecutionProvider: 1650, CPUExecutionProvider: 2 });
  assert.deepEqual(p.cpuNodes, ['Range (/time_proj/Range)', 'Shape (/Shape_3)']);
  assert.equal(describePlacement(p), 'WebGpu: 1650 nodes, CPU: 2 nodes — on CPU: Range (/time_proj/Range), Shape (/Shape_3)');
  const all = parseNodePlacement([V(' Node placements'), V('  All nodes placed on [CPUExecutionProvider]. Number of nodes: 751')].join('\n'))!;
  assert.deepEqual(all, { counts: { CPUExecutionProvider: 751 }, cpuNodes: [] });
  assert.equal(parseNodePlacement('no verbose log here'), undefined);
});

test('on this machine the fixture UNet opens on the CPU and every node is reported there', { skip: needsFixture() }, async () => {
  const { probeNodePlacement } = await import('../../../src/core/runtime/placement');
  const p = await probeNodePlacement(`${referenceSd}/unet/model.onnx`, 'cpu');
  assert.deepEqual(Object.keys(p.counts), ['CPUExecutionProvider']);
  assert.ok(p.counts.CPUExecutionProvider > 500);
  await assert.rejects(probeNodePlacement(`${referenceSd}/unet/missing.onnx`, 'cpu'), /could not open .*missing\.onnx on cpu to read node placement/);
});
