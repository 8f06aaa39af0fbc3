// Exports written by other exporters and at other opsets, rewritten from the reference UNet with its weights: each
// must pass the same oracle checks, find its LoRA layers by structure where names say nothing, sample and train.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../../src/core/onnx/proto';
import type { Model } from '../../../src/core/onnx/ir';
import { createSession, runModel, type FeedValue } from '../../../src/core/runtime/ortRun';
import { ConformanceResult, checkUnetDdpo, checkUnetForward, checkUnetVjp } from '../../../src/core/train/conformance';
import { findLoraTargets } from '../../../src/core/train/loraTargets';
import { injectLora, loraFeeds, mergeLora } from '../../../src/core/train/lora';
import { readLora } from '../../../src/core/train/loraFile';
import { diagnoseModel } from '../../../src/core/doctor/doctor';
import { formatModelReport } from '../../../src/core/doctor/format';
import { precisionOf } from '../../../src/core/doctor/describe';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { createOnnxPolicy } from '../../../src/core/ddpo/onnxPolicy';
import { runDdpo } from '../../../src/core/ddpo/trainer';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { makeReward } from '../../../src/core/ddpo/rewards';
import { needsFixture, referenceSd } from '../fixtures';
import { variantFolder, withStaticShapes } from './fixture';
import { anonymize, atOpset, dynamoStyle, fp16Export, withTransposedWeights } from './exportVariants';

const reference = () => loadModel(join(referenceSd, 'unet/model.onnx'));
const opsOf = (m: Model) => new Set(m.graph.nodes.map((n) => n.opType));

function assertAllPass(results: ConformanceResult[]): void {
  assert.ok(results.length > 0);
  for (const r of results) assert.ok(r.passed, `${r.name}: max rel err ${r.maxRelErr} (${r.detail ?? ''})`);
}

test('a dynamo-style export (anonymous names, constants as initializers, GroupNormalization-21, Gelu, Split with sizes, Transpose(W) linears, opset 21) passes forward, VJP and DDPO conformance', { skip: needsFixture() }, async () => {
  const m = dynamoStyle(reference());
  const ops = opsOf(m);
  for (const op of ['GroupNormalization', 'Gelu', 'Split', 'Transpose', 'LayerNormalization']) assert.ok(ops.has(op), op);
  for (const op of ['Constant', 'InstanceNormalization', 'Erf']) assert.ok(!ops.has(op), op);
  assert.ok(m.graph.nodes.every((n) => /^node_\w+_\d+$/.test(n.name)));
  assert.equal(m.opsetImports[0].version, 21);
  assertAllPass(await checkUnetForward(referenceSd, m));
  assertAllPass(await checkUnetVjp(referenceSd, m));
  assertAllPass(await checkUnetDdpo(referenceSd, m));
});

test('opsets 14 (LayerNormalization written out), 18 and 20 compute the oracle; at opset 14 the LoRA gradients too', { skip: needsFixture() }, async () => {
  for (const v of [14, 18, 20]) assertAllPass(await checkUnetForward(referenceSd, atOpset(reference(), v)));
  const m14 = atOpset(reference(), 14);
  assert.ok(!opsOf(m14).has('LayerNormalization'));
  assertAllPass(await checkUnetVjp(referenceSd, m14));
});

test('on an anonymous graph the LoRA layers are found by structure, with the names node scopes give (PEFT and kohya alike)', { skip: needsFixture() }, () => {
  const byName = findLoraTargets(reference(), { detection: 'scope' }).map((t) => t.module);
  for (const variant of [anonymize(reference()), dynamoStyle(reference())]) {
    assert.throws(() => findLoraTargets(variant, { detection: 'scope' }), /no LoRA target layers/);
    assert.deepEqual(findLoraTargets(variant).map((t) => t.module), byName);
  }
  assert.equal(byName.length, 32);
});

test('a LoRA merged into Transpose(W) linear weights computes what the injected adapters compute', { skip: needsFixture() }, async () => {
  const m = withTransposedWeights(reference());
  const weights = readLora(join(referenceSd, 'unet/lora_peft.safetensors'));
  const merged = mergeLora(m, weights);
  const injected = injectLora(m, { rank: weights.rank, alpha: weights.alpha });
  const feeds = new Map<string, FeedValue>(Object.entries({
    sample: { dims: [1, 4, 8, 8], data: Float32Array.from({ length: 256 }, (_, i) => Math.sin(i)) },
    timestep: { dims: [1], data: [500] }, encoder_hidden_states: { dims: [1, 77, 32], data: Float32Array.from({ length: 77 * 32 }, (_, i) => Math.cos(i)) },
  }));
  const run = async (model: Model, extra: ReadonlyMap<string, FeedValue> = new Map()) => {
    const s = await createSession(model);
    try { return (await runModel(s, model, new Map([...feeds, ...extra]))).get('out_sample')!.data; } finally { await s.release(); }
  };
  const a = await run(merged);
  const b = await run(injected.model, loraFeeds(injected.adapters, weights));
  const base = await run(m);
  let diff = 0, moved = 0, scale = 0;
  for (let i = 0; i < a.length; i++) { diff = Math.max(diff, Math.abs(a[i] - b[i])); moved = Math.max(moved, Math.abs(a[i] - base[i])); scale = Math.max(scale, Math.abs(b[i])); }
  assert.ok(diff / scale < 1e-5 && moved / scale > 1e-3, `merged vs injected ${diff / scale}, LoRA effect ${moved / scale}`);
});

test('a float16 export (weights and I/O) predicts the oracle to float16 precision and trains: LoRA gradients and the DDPO step', { skip: needsFixture() }, async () => {
  const m = fp16Export(reference());
  // its weights are the oracle's rounded to float16, so it agrees only to that rounding (≈1e-3 per weight)
  const within = (rs: ConformanceResult[], tol: number) => rs.forEach((r) => assert.ok(r.maxRelErr <= tol, `${r.name}: ${r.maxRelErr} > ${tol}`));
  within(await checkUnetForward(referenceSd, m), 5e-3);
  within((await checkUnetVjp(referenceSd, m)).filter((r) => r.name !== 'unet.vjp.loss'), 3e-2);
  const ddpo = await checkUnetDdpo(referenceSd, m);
  within(ddpo.filter((r) => r.name !== 'unet.ddpo.grad.lora'), 1e-4);
  within(ddpo.filter((r) => r.name === 'unet.ddpo.grad.lora'), 3e-2);
});

async function oneEpoch(modelDir: string): Promise<void> {
  const config = parseDdpoConfig({ num_epochs: 1, sample_num_steps: 2, sample_batch_size: 2, sample_num_batches_per_epoch: 1, train_batch_size: 2, eval_seeds: [], lora_rank: 2, latent_size: 16 }).config;
  const policy = await createOnnxPolicy(modelDir, config);
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'ddpo-exporter-epoch-'));
  try {
    const r = await runDdpo({ config, layout: ddpoLayout(dir), policy, reward: await makeReward(config.reward, dir), prompts: ['a cat', 'a dog'] });
    const m = r.metrics[0] as unknown as Record<string, number>;
    assert.ok(Number.isFinite(m.approx_kl) && Number.isFinite(m.reward_mean), JSON.stringify(m));
  } finally { await policy.release?.(); fs.rmSync(dir, { recursive: true, force: true }); }
}

test('a static dynamo-style export with external data and a float16 export sample, train one DDPO epoch, and the doctor says what they are', { skip: needsFixture() }, async () => {
  const dynamo = variantFolder(withStaticShapes(dynamoStyle(reference()), { batch: 2 }), { externalData: true });
  assert.ok(fs.existsSync(join(dynamo, 'unet/model.onnx_data')));
  await oneEpoch(dynamo);
  const r = await diagnoseModel(dynamo);
  const text = formatModelReport(r).join('\n');
  assert.ok(r.canSample && r.canTrain, text);
  assert.match(text, /exporter +pytorch [\d.]+, opset 21, anonymous node names \(dynamo exporter, or names stripped\); LayerNormalization ×12, GroupNormalization ×21, Gelu ×4, Split with sizes ×4/);
  assert.match(text, /LoRA +32 layers found by graph structure \(the export has no module names\): down_blocks\.0 8, mid_block 8, up_blocks\.1 16/);
  const half = fp16Export(reference());
  await oneEpoch(variantFolder(half));
  assert.match(precisionOf(half), /^weights float16 \d+%.*float16 inputs$/);
});
