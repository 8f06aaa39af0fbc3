// Exports optimised by onnxruntime's transformer optimizer for CUDA (com.microsoft fused ops): training lowers them to
// standard operators before differentiating; sampling keeps them where the provider runs them, lowers them where not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../../src/core/onnx/proto';
import { ConformanceResult, checkUnetDdpo, checkUnetForward, checkUnetVjp } from '../../../src/core/train/conformance';
import { findLoraTargets } from '../../../src/core/train/loraTargets';
import { standardUnet } from '../../../src/core/train/standardForm';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { sampleDdim } from '../../../src/core/diffusion/sampler';
import { diagnoseModel } from '../../../src/core/doctor/doctor';
import { formatModelReport } from '../../../src/core/doctor/format';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { createOnnxPolicy } from '../../../src/core/ddpo/onnxPolicy';
import { runDdpo } from '../../../src/core/ddpo/trainer';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { makeReward } from '../../../src/core/ddpo/rewards';
import { needsFixture, referenceSd } from '../fixtures';
import { variantFolder } from './fixture';
import { ortOptimized, withFusedAttention, withFusedGroupNorm, withSkipLayerNorm } from './fusedVariants';

const reference = () => loadModel(join(referenceSd, 'unet/model.onnx'));
// the fixture's UNet has 8 heads in every attention (oracle.json: attention_head_dim 8)
const HEADS = 8;
const fusedOps = (m: ReturnType<typeof reference>) => [...new Set(m.graph.nodes.filter((n) => n.domain === 'com.microsoft').map((n) => n.opType))].sort();

function assertAllPass(results: ConformanceResult[]): void {
  assert.ok(results.length > 0);
  for (const r of results) assert.ok(r.passed, `${r.name}: max rel err ${r.maxRelErr} (${r.detail ?? ''})`);
}

test('an onnxruntime-optimised UNet (packed MultiHeadAttention, GroupNorm, SkipGroupNorm, NhwcConv, SkipLayerNormalization, BiasSplitGelu, BiasAdd) passes forward, VJP and DDPO conformance', { skip: needsFixture() }, async () => {
  const m = ortOptimized(reference(), HEADS);
  assert.deepEqual(fusedOps(m), ['BiasAdd', 'BiasSplitGelu', 'GroupNorm', 'MultiHeadAttention', 'NhwcConv', 'SkipGroupNorm', 'SkipLayerNormalization']);
  assertAllPass(await checkUnetForward(referenceSd, m));
  assertAllPass(await checkUnetVjp(referenceSd, m));
  assertAllPass(await checkUnetDdpo(referenceSd, m));
});

test('with Attention for self-attention and unpacked cross-attention the DDPO step passes too; LoRA finds q/k/v split back out of the packed weights', { skip: needsFixture() }, async () => {
  const unpacked = ortOptimized(reference(), HEADS, false);
  assert.ok(fusedOps(unpacked).includes('Attention'));
  assertAllPass(await checkUnetDdpo(referenceSd, unpacked));
  const names = findLoraTargets(reference()).map((t) => t.module);
  for (const m of [unpacked, ortOptimized(reference(), HEADS)]) {
    const std = standardUnet(m);
    assert.match(std.changes[0], /^fused operators lowered to standard ones: /);
    assert.deepEqual(findLoraTargets(std.model).map((t) => t.module), names);
  }
});

async function sampleOf(dir: string, warnings: string[] = []) {
  const pipe = await StableDiffusionPipeline.load(dir, { onWarning: (w) => warnings.push(w) });
  try {
    const r = await sampleDdim(pipe, { prompt: 'a cat', count: 1, seed: 3, steps: 2, guidance: 5, eta: 1, latentHeight: 8, latentWidth: 8 });
    return { last: r.trajectory[2], lowered: pipe.unet.loweredOps };
  } finally { await pipe.release(); }
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let e = 0, s = 0;
  for (let i = 0; i < a.length; i++) { e = Math.max(e, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(b[i])); }
  return e / s;
}

test('sampling keeps fused ops the CPU runs (Attention, MultiHeadAttention on q/k/v, SkipLayerNormalization) and lowers the rest, saying so', { skip: needsFixture() }, async () => {
  const want = (await sampleOf(referenceSd)).last;
  const kept = await sampleOf(variantFolder(withSkipLayerNorm(withFusedAttention(reference(), HEADS, false))));
  assert.equal(kept.lowered, undefined);
  assert.ok(maxRel(kept.last, want) < 1e-4, String(maxRel(kept.last, want)));
  const warnings: string[] = [];
  const gn = await sampleOf(variantFolder(withFusedGroupNorm(reference())), warnings);
  assert.deepEqual(gn.lowered, ['GroupNorm', 'SkipGroupNorm']);
  assert.match(warnings.join('\n'), /unet\/model\.onnx uses GroupNorm, SkipGroupNorm \(onnxruntime's fused operators\), which cpu has no kernel for; it runs them as standard ONNX operators/);
  assert.ok(maxRel(gn.last, want) < 1e-4);
  // the CPU's MultiHeadAttention opens with packed k/v but refuses them when it runs
  const packedWarnings: string[] = [];
  const packed = await sampleOf(variantFolder(withFusedAttention(reference(), HEADS, true)), packedWarnings);
  assert.ok(packed.lowered?.includes('MultiHeadAttention'));
  assert.match(packedWarnings.join('\n'), /MultiHeadAttention does not run on cpu as exported; it runs as standard ONNX operators/);
  assert.ok(maxRel(packed.last, want) < 1e-4);
});

test('one DDPO epoch on the optimised export, and the doctor names its fused ops and says it samples and trains here', { skip: needsFixture() }, async () => {
  const dir = variantFolder(ortOptimized(reference(), HEADS));
  const config = parseDdpoConfig({ num_epochs: 1, sample_num_steps: 2, sample_batch_size: 2, sample_num_batches_per_epoch: 1, train_batch_size: 2, eval_seeds: [], lora_rank: 2, latent_size: 16 }).config;
  const policy = await createOnnxPolicy(dir, config);
  const exp = fs.mkdtempSync(join(os.tmpdir(), 'ddpo-fused-epoch-'));
  try {
    const r = await runDdpo({ config, layout: ddpoLayout(exp), policy, reward: await makeReward(config.reward, exp), prompts: ['a cat', 'a dog'] });
    assert.ok(Number.isFinite((r.metrics[0] as unknown as Record<string, number>).approx_kl));
  } finally { await policy.release?.(); fs.rmSync(exp, { recursive: true, force: true }); }
  const report = await diagnoseModel(dir);
  const text = formatModelReport(report).join('\n');
  assert.ok(report.canSample && report.canTrain, text);
  assert.match(text, /fused ops +com\.microsoft\.NhwcConv ×19, com\.microsoft\.GroupNorm ×13, com\.microsoft\.SkipGroupNorm ×8, com\.microsoft\.MultiHeadAttention ×8, .*; training lowers them to standard operators/);
  assert.match(text, /LoRA +32 layers found by graph structure/);
  assert.match(text, /warning \[sample\] .*GroupNorm.*runs them as standard ONNX operators/);
});
