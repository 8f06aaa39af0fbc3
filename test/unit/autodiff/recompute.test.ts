/** Attention probabilities recomputed in the backward: the same gradients, and the forward ones no longer read there. */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildGradientGraph } from '../../../src/core/autodiff/gradient';
import { loadModel } from '../../../src/core/onnx/proto';
import { specialize } from '../../../src/core/onnx/specialize';
import { Model } from '../../../src/core/onnx/ir';
import { dotObjective } from '../../../src/core/train/objective';
import { createSession, runModel, type FeedValue } from '../../../src/core/runtime/ortRun';
import { mulberry32 } from '../../../src/core/random';
import { needsFixture, referenceSd } from '../fixtures';

const LATENT = 8;

function build(recomputeAttention?: number) {
  const m = dotObjective(loadModel(path.join(referenceSd, 'unet/model.onnx')));
  const spec = specialize(m, { inputShapes: { sample: [2, 4, LATENT, LATENT], timestep: [2], encoder_hidden_states: [2, 77, 32], vjp_weights: [2, 4, LATENT, LATENT] } });
  return buildGradientGraph(spec.model, { shapes: spec.shapes, wrt: ['sample', 'encoder_hidden_states'], loss: 'loss', recomputeAttention });
}

async function grads(model: Model): Promise<Map<string, { data: Float32Array }>> {
  const rnd = mulberry32(9);
  const fill = (n: number) => Float32Array.from({ length: n }, () => rnd() * 2 - 1);
  const n = 2 * 4 * LATENT * LATENT;
  const feeds = new Map<string, FeedValue>([
    ['sample', { dims: [2, 4, LATENT, LATENT], data: fill(n) }], ['timestep', { dims: [2], data: [981, 501] }],
    ['encoder_hidden_states', { dims: [2, 77, 32], data: fill(2 * 77 * 32) }], ['vjp_weights', { dims: [2, 4, LATENT, LATENT], data: fill(n) }],
  ]);
  const s = await createSession(model, { threads: 1 });
  try { return await runModel(s, model, feeds); } finally { await s.release(); }
}

test('recomputed attention probabilities give the same gradients, and no gradient node reads a forward Softmax output', { skip: needsFixture() }, async () => {
  const kept = build();
  const again = build(1);
  const softmaxes = again.model.graph.nodes.filter((n) => n.opType === 'Softmax' && !n.name.startsWith('grad/'));
  assert.ok(softmaxes.length > 0);
  assert.equal(again.recomputed?.tensors, softmaxes.length, 'every attention is recomputed at threshold 1');
  assert.equal(kept.recomputed, undefined);
  const forwardP = new Set(softmaxes.map((n) => n.outputs[0]));
  const readers = (m: Model) => m.graph.nodes.filter((n) => n.name.startsWith('grad/') && !n.name.startsWith('grad/recompute/') && n.inputs.some((i) => forwardP.has(i)));
  assert.ok(readers(kept.model).length > 0, 'without recomputation the backward reads the forward probabilities');
  assert.equal(readers(again.model).length, 0);
  // the copies sit right before their readers: after the whole forward pass
  const idx = (name: string) => again.model.graph.nodes.findIndex((n) => n.name === name);
  const lastForward = Math.max(...again.model.graph.nodes.map((n, i) => (n.name.startsWith('grad/') ? -1 : i)));
  for (const n of again.model.graph.nodes.filter((x) => x.name.startsWith('grad/recompute/'))) assert.ok(idx(n.name) > lastForward, `${n.name} runs before the backward`);
  const [g0, g1] = [await grads(kept.model), await grads(again.model)];
  for (const k of ['sample_grad', 'encoder_hidden_states_grad']) {
    const a = g0.get(k)!.data, b = g1.get(k)!.data;
    let e = 0, s = 0;
    for (let i = 0; i < a.length; i++) { e = Math.max(e, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(a[i])); }
    assert.ok(e / s < 1e-6, `${k} differs by ${e / s}`);
  }
});

test('attention probabilities under the threshold are kept', { skip: needsFixture() }, () => {
  const r = build(2 ** 25).recomputed!;
  assert.deepEqual([r.tensors, r.nodes], [0, 0]);
});
