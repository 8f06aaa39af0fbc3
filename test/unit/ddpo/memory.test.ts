import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { OutOfMemoryError } from '../../../src/core/ddpo/guards';
import { checkMemory, estimateDdpoMemory } from '../../../src/core/ddpo/memory';
import { createOnnxPolicy } from '../../../src/core/ddpo/onnxPolicy';
import { specialize } from '../../../src/core/onnx/specialize';
import { needsFixture, referenceSd } from '../fixtures';
import { tinyLinearModel } from '../train/tinyModels';

const config = (o: Record<string, unknown> = {}) => parseDdpoConfig({ sample_batch_size: 4, train_batch_size: 2, latent_size: 16, ...o }).config;

test('the estimate sums the graph\'s tensors and grows with sample_batch_size', () => {
  const spec = specialize(tinyLinearModel(), {});
  const small = estimateDdpoMemory(spec.model, spec.shapes, config());
  assert.equal(small.activationBytes, (2 * 4 + 2 * 5) * 4); // q [2,4] and k [2,5], float32
  assert.equal(small.weightBytes, 4 * (12 + 4 + 15) * 4); // ours, each session's, and what onnxruntime holds while building one
  const big = estimateDdpoMemory(spec.model, spec.shapes, config({ sample_batch_size: 16 }));
  assert.ok(big.samplingBytes > small.samplingBytes && big.totalBytes > small.totalBytes);
});

test('an estimate over the budget stops with the settings to lower and the numbers', () => {
  const spec = specialize(tinyLinearModel(), {});
  const est = estimateDdpoMemory(spec.model, spec.shapes, config());
  checkMemory(est, config(), 16, est.totalBytes); // exactly enough: no error
  assert.throws(() => checkMemory(est, config(), 16, est.totalBytes - 1), (e: unknown) => {
    assert.ok(e instanceof OutOfMemoryError);
    assert.match(e.message, /needs about [\d.]+ GB .*train_batch_size 2.*sample_batch_size 4, latent_size 16.* only [\d.]+ GB is available/);
    assert.match(e.message, /Lower train_batch_size .* sample_batch_size .* or latent_size in ddpo\.json/);
    return true;
  });
});

test('a real UNet over a tiny budget fails before any session is built, naming the settings', { skip: needsFixture() }, async () => {
  const logs: string[] = [];
  await assert.rejects(createOnnxPolicy(referenceSd, config(), { memoryBudgetBytes: 1e6, onLog: (l) => logs.push(l) }), (e: unknown) => {
    assert.ok(e instanceof OutOfMemoryError, String(e));
    assert.match((e as Error).message, /train_batch_size 2.*sample_batch_size 4, latent_size 16/);
    return true;
  });
  assert.match(logs.join('\n'), /memory estimate [\d.]+ GB/);
  // a 4x larger latent area needs about 4x the activations
  const sizes: number[] = [];
  for (const latent of [16, 32]) {
    await createOnnxPolicy(referenceSd, config({ latent_size: latent }), { memoryBudgetBytes: 1, onLog: (l) => sizes.push(Number(/estimate ([\d.]+) GB/.exec(l)?.[1])) }).catch(() => undefined);
  }
  assert.ok(sizes[1] > 3 * sizes[0], `estimates ${sizes.join(', ')} GB`);
});

test('train_timesteps_per_run multiplies the training graph\'s batch: its estimate grows, sampling\'s does not, and the error names it first', { skip: needsFixture() }, async () => {
  const est: Record<number, { training: number; sampling: number }> = {};
  for (const k of [1, 2]) {
    const err = await createOnnxPolicy(referenceSd, config({ train_timesteps_per_run: k }), { memoryBudgetBytes: 1, onLog: (l) => {
      const m = /training ([\d.]+) GB, sampling ([\d.]+) GB/.exec(l);
      if (m) est[k] = { training: Number(m[1]), sampling: Number(m[2]) };
    } }).then(() => undefined, (e: unknown) => e as Error);
    assert.ok(err instanceof OutOfMemoryError, String(err));
    if (k === 2) assert.match(err.message, /train_batch_size 2 x train_timesteps_per_run 2, .* Lower train_timesteps_per_run \(it changes only speed\), train_batch_size/);
  }
  assert.ok(est[2].training > 1.7 * est[1].training, JSON.stringify(est));
  assert.equal(est[2].sampling, est[1].sampling);
});

test('at 64x64 latents the estimate holds one pair of large attention probabilities, as the recomputing backward does', { skip: needsFixture() }, async () => {
  const { loadModel } = await import('../../../src/core/onnx/proto');
  const { ddpoInputShapes, ddpoObjective } = await import('../../../src/core/train/objective');
  const { numel } = await import('../../../src/core/onnx/ir');
  const forward = ddpoObjective(loadModel(`${referenceSd}/unet/model.onnx`), { advClipMax: 5 });
  const spec = specialize(forward, { inputShapes: ddpoInputShapes([1, 4, 64, 64], [1, 77, 32], false) });
  const est = estimateDdpoMemory(spec.model, spec.shapes, config({ train_batch_size: 1, latent_size: 64 }));
  let all = 0, pairs = 0;
  for (const n of spec.model.graph.nodes) for (const o of n.outputs) all += numel(spec.shapes.get(o)?.dims ?? [0]) * 4;
  for (const n of spec.model.graph.nodes.filter((x) => x.opType === 'Softmax')) if (numel(spec.shapes.get(n.outputs[0])!.dims) >= 2 ** 25) pairs++;
  const pair = 2 * 2 * 8 * 4096 * 4096 * 4; // scores and probabilities of one 4096-token self-attention, UNet batch 2, 8 heads
  assert.equal(pairs, 3);
  assert.ok(Math.abs(all - est.activationBytes - (pairs - 1) * pair) < 1e6, `${all} - ${est.activationBytes} is not ${pairs - 1} pairs of ${pair}`);
});
