// The DDPO policy's sampling graph: fused attention (with or without specialising) predicts what the standard-op LoRA graph does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Model } from '../../../src/core/onnx/ir';
import { loadModel } from '../../../src/core/onnx/proto';
import { buildSamplingGraph } from '../../../src/core/ddpo/samplingGraph';
import { injectLora, loraFeeds } from '../../../src/core/train/lora';
import { readLora } from '../../../src/core/train/loraFile';
import { createSession, runModel, type FeedValue } from '../../../src/core/runtime/ortRun';
import { mulberry32 } from '../../../src/core/random';
import { needsFixture, referenceSd } from '../fixtures';
import { needsTinyModel } from '../fixtures';

const TINY = path.resolve(__dirname, '../../../media/tiny-model/unet/model.onnx');

function unetFeeds(batch: number, latent: number, seq: number, dim: number): Map<string, FeedValue> {
  const rnd = mulberry32(11);
  const fill = (n: number) => Float32Array.from({ length: n }, () => rnd() * 2 - 1);
  return new Map<string, FeedValue>([
    ['sample', { dims: [batch, 4, latent, latent], data: fill(batch * 4 * latent * latent) }],
    ['timestep', { dims: [batch], data: new Array(batch).fill(501) }],
    ['encoder_hidden_states', { dims: [batch, seq, dim], data: fill(batch * seq * dim) }],
  ]);
}

async function predict(model: Model, feeds: Map<string, FeedValue>): Promise<Float32Array> {
  const s = await createSession(model, { threads: 1 });
  try { return (await runModel(s, model, feeds, [model.graph.outputs[0].name])).get(model.graph.outputs[0].name)!.data; } finally { await s.release(); }
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let e = 0, s = 0;
  for (let i = 0; i < a.length; i++) { e = Math.max(e, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(b[i])); }
  return e / s;
}

test('a PyTorch export is specialised to the sampling batch, fused, and predicts what the standard-op LoRA graph predicts', { skip: needsFixture() }, async () => {
  const forward = loadModel(path.join(referenceSd, 'unet/model.onnx'));
  const lora = readLora(path.join(referenceSd, 'unet/lora_peft.safetensors'));
  const cfg = { rank: lora.rank, alpha: lora.alpha };
  const g = buildSamplingGraph(forward, { lora: cfg, batch: 2, latent: 8, sequence: 77, fp16: false });
  assert.ok(g.fusedAttention > 0, 'no attention core fused');
  assert.equal(g.staticBatch, 2, 'the export computes its head reshapes at run time, so only the specialised graph fuses');
  const reference = injectLora(forward, cfg);
  const feeds = unetFeeds(2, 8, 77, 32);
  for (const [k, v] of loraFeeds(g.adapters, lora)) feeds.set(k, v);
  const err = maxRelDiff(await predict(g.model, feeds), await predict(reference.model, feeds));
  assert.ok(err < 1e-4, `fused prediction differs by ${err}`);
});

test('a graph whose head reshapes are constants fuses as it stands and takes any batch', { skip: needsTinyModel() }, async () => {
  const forward = loadModel(TINY);
  const cfg = { rank: 2, alpha: 4 };
  const g = buildSamplingGraph(forward, { lora: cfg, batch: 2, latent: 8, sequence: 5, fp16: false });
  assert.ok(g.fusedAttention > 0);
  assert.equal(g.staticBatch, undefined);
  const reference = injectLora(forward, cfg);
  const rnd = mulberry32(4);
  const weights = loraFeeds(g.adapters, { rank: 2, alpha: 4, modules: new Map(g.adapters.map((a) => [a.module, {
    inFeatures: a.inFeatures, outFeatures: a.outFeatures,
    A: Float32Array.from({ length: 2 * a.inFeatures }, () => rnd() - 0.5), B: Float32Array.from({ length: 2 * a.outFeatures }, () => rnd() - 0.5),
  }])) });
  for (const batch of [1, 3]) {
    const feeds = unetFeeds(batch, 8, 5, 32);
    for (const [k, v] of weights) feeds.set(k, v);
    const err = maxRelDiff(await predict(g.model, feeds), await predict(reference.model, feeds));
    assert.ok(err < 1e-4, `batch ${batch}: fused prediction differs by ${err}`);
  }
});
