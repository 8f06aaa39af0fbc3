import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openSession } from '../../../src/core/runtime/sessionProviders';
import { describePlacement, placementFromProfile, type NodePlacement } from '../../../src/core/runtime/placement';

const UNET = path.resolve(__dirname, '../../../media/tiny-model/unet/model.onnx');
const feeds = () => ({
  sample: new ort.Tensor('float32', new Float32Array(4 * 8 * 8).fill(0.1), [1, 4, 8, 8]),
  timestep: new ort.Tensor('int64', BigInt64Array.of(500n), [1]),
  encoder_hidden_states: new ort.Tensor('float32', new Float32Array(5 * 32).fill(0.2), [1, 5, 32]),
});
const leftovers = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(`ddpo-placement-${process.pid}-`));

test('after a session\'s first run its node placement is reported once, from the profiler, and no profile file stays', async () => {
  const seen: { what: string; ep: string; p: NodePlacement }[] = [];
  // the CPU is recorded here only because placementFor says so; by default only GPU providers are
  const opened = await openSession(UNET, 'unet/model.onnx', { candidates: ['cpu'], placementFor: () => true, onPlacement: (what, ep, p) => seen.push({ what, ep, p }) });
  const first = await opened.session.run(feeds());
  await opened.session.run(feeds());
  assert.equal(seen.length, 1, 'reported once');
  assert.equal(seen[0].what, 'unet/model.onnx');
  const nodes = seen[0].p.counts.CPUExecutionProvider;
  assert.ok(nodes > 100, `counted ${nodes} nodes`);
  assert.deepEqual(seen[0].p.cpuNodes, [], 'one provider: nothing fell back');
  assert.ok(Object.values(first).length > 0);
  await opened.session.release();
  assert.deepEqual(leftovers(), []);
});

test('by default a CPU session records nothing, and a session released unrun leaves no profile behind', async () => {
  const seen: unknown[] = [];
  const plain = await openSession(UNET, 'unet', { candidates: ['cpu'], onPlacement: (...a) => seen.push(a) });
  await plain.session.run(feeds());
  await plain.session.release();
  const unrun = await openSession(UNET, 'unet', { candidates: ['cpu'], placementFor: () => true, onPlacement: (...a) => seen.push(a) });
  await unrun.session.release();
  assert.deepEqual(seen, []);
  assert.deepEqual(leftovers(), []);
});

test('the placement names the nodes a GPU provider left to the CPU', () => {
  const ev = (name: string, provider: string, op: string) => ({ cat: 'Node', name: `${name}_kernel_time`, args: { provider, op_name: op } });
  const p = placementFromProfile([
    ev('/conv', 'WebGpuExecutionProvider', 'Conv'), ev('/conv', 'WebGpuExecutionProvider', 'Conv'), ev('/shape', 'CPUExecutionProvider', 'Shape'),
    ev('/mm', 'WebGpuExecutionProvider', 'MatMul'), { cat: 'Session', name: 'model_run' },
  ])!;
  assert.deepEqual(p.counts, { WebGpuExecutionProvider: 2, CPUExecutionProvider: 1 });
  assert.deepEqual(p.cpuNodes, ['Shape (/shape)']);
  assert.equal(placementFromProfile([{ cat: 'Session', name: 'x' }]), undefined);
});

test('the placement report reads a CUDA session the same way: nodes per provider and those left to the CPU', () => {
  const ev = (name: string, provider: string, op: string) => ({ cat: 'Node', name: `${name}_kernel_time`, args: { provider, op_name: op } });
  const p = placementFromProfile([
    ev('/conv', 'CUDAExecutionProvider', 'Conv'), { cat: 'Node', name: '/conv_fence_before', args: { provider: 'CUDAExecutionProvider', op_name: 'Conv' } },
    ev('/mm', 'CUDAExecutionProvider', 'MatMul'), ev('/range', 'CPUExecutionProvider', 'Range'),
  ])!;
  assert.deepEqual(p.counts, { CUDAExecutionProvider: 2, CPUExecutionProvider: 1 });
  assert.equal(describePlacement(p), 'CUDA: 2 nodes, CPU: 1 nodes — on CPU: Range (/range)');
});
