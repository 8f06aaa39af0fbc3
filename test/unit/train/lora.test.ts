import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../../../src/core/onnx/proto';
import { readSafetensors } from '../../../src/core/safetensors';
import { findLoraTargets } from '../../../src/core/train/loraTargets';
import { GraphIndex, linearLayerOf } from '../../../src/core/train/graphIndex';
import { A } from '../../../src/core/onnx/builder';
import { initLoraWeights, injectLora, loraFeeds, mergeLora } from '../../../src/core/train/lora';
import { LoraWeights, readLora } from '../../../src/core/train/loraFile';
import { createSession, runModel } from '../../../src/core/runtime/ortRun';
import { maxRelError } from '../../../src/core/diffusion/conformance';
import { needsFixture, referenceSd } from '../fixtures';
import { stripNodeNames } from './fixture';
import { randomValues, tinyLinearModel } from './tinyModels';
import { buildUNet } from '../../../src/core/graphs/unet';
import { TINY_UNET_CONFIG } from '../graphs/helpers';

const x = { dims: [2, 3], data: randomValues(6, 9) };

test('LoRA injected as graph inputs matches merged weights on Gemm(transB) and MatMul', async () => {
  const model = tinyLinearModel();
  const inj = injectLora(model, { rank: 2, alpha: 6, targets: ['to_q', 'to_k'] });
  assert.deepEqual(inj.adapters.map((a) => [a.module, a.inFeatures, a.outFeatures]), [['blk.attn.to_q', 3, 4], ['blk.attn.to_k', 3, 5]]);
  const weights: LoraWeights = { rank: 2, alpha: 6, modules: new Map() };
  inj.adapters.forEach((a, k) => weights.modules.set(a.module, { inFeatures: a.inFeatures, outFeatures: a.outFeatures, A: randomValues(2 * a.inFeatures, 10 + k), B: randomValues(2 * a.outFeatures, 20 + k) }));
  const feeds = new Map([['x', x], ...loraFeeds(inj.adapters, weights)]);
  const adapted = await runModel(await createSession(inj.model), inj.model, feeds);
  const merged = mergeLora(model, weights);
  const ref = await runModel(await createSession(merged), merged, { x });
  const base = await runModel(await createSession(model), model, { x });
  for (const out of ['q', 'k']) {
    assert.ok(maxRelError(adapted.get(out)!.data, ref.get(out)!.data) < 1e-6, `${out} differs from W + scale·(BA)ᵀ`);
    assert.ok(maxRelError(adapted.get(out)!.data, base.get(out)!.data) > 1e-2, `${out}: the adapter changed nothing`);
  }
});

test('PEFT initialisation leaves the model unchanged (B = 0) and bounds A by 1/sqrt(in)', async () => {
  const model = tinyLinearModel();
  const inj = injectLora(model, { rank: 4, alpha: 4, targets: ['to_q'] });
  const w = initLoraWeights(inj.adapters, 4, 4, 7);
  const m = w.modules.get('blk.attn.to_q')!;
  assert.ok(m.B.every((v) => v === 0));
  assert.ok(m.A.every((v) => Math.abs(v) <= 1 / Math.sqrt(3)) && m.A.some((v) => v !== 0));
  assert.deepEqual(initLoraWeights(inj.adapters, 4, 4, 7).modules.get('blk.attn.to_q')!.A, m.A, 'same seed, same init');
  const out = await runModel(await createSession(inj.model), inj.model, new Map([['x', x], ...loraFeeds(inj.adapters, w)]));
  const base = await runModel(await createSession(model), model, { x });
  assert.deepEqual(out.get('q')!.data, base.get('q')!.data);
});

test('unknown target names fail with a message naming them', () => {
  assert.throws(() => injectLora(tinyLinearModel(), { rank: 2, alpha: 2, targets: ['to_z'] }), /to_z/);
});

test('fixture UNet: scope and structural detection give the PEFT names of lora_peft.safetensors', { skip: needsFixture() }, () => {
  const unet = loadModel(join(referenceSd, 'unet/model.onnx'));
  const peftModules = [...readLora(join(referenceSd, 'unet/lora_peft.safetensors')).modules.keys()].sort();
  const byScope = findLoraTargets(unet, { detection: 'scope' }).map((t) => t.module);
  assert.deepEqual([...byScope].sort(), peftModules);
  const byStructure = findLoraTargets(stripNodeNames(unet), { detection: 'structure' }).map((t) => t.module);
  assert.deepEqual(byStructure, byScope);
  // auto falls back to structure when scopes are gone
  assert.deepEqual(findLoraTargets(stripNodeNames(unet)).map((t) => t.module), byScope);
});

test('fixture UNet with the PEFT LoRA reproduces the PyTorch LoRA output, injected or merged', { skip: needsFixture() }, async () => {
  const unet = loadModel(join(referenceSd, 'unet/model.onnx'));
  const o = readSafetensors(join(referenceSd, 'unet/oracle.safetensors'));
  const t = (k: string) => ({ dims: o.get(k)!.shape, data: o.get(k)!.data as Float32Array });
  const feeds = { sample: t('fwd.sample'), timestep: t('fwd.timestep'), encoder_hidden_states: t('fwd.encoder_hidden_states') };
  const lora = readLora(join(referenceSd, 'unet/lora_peft.safetensors'));
  assert.equal(lora.alpha / lora.rank, 2);
  const inj = injectLora(stripNodeNames(unet), { rank: lora.rank, alpha: lora.alpha });
  const out = await runModel(await createSession(inj.model), inj.model, new Map([...Object.entries(feeds), ...loraFeeds(inj.adapters, lora)]));
  assert.ok(maxRelError(out.get('out_sample')!.data, t('vjp.out_sample').data) < 1e-4);
  const merged = mergeLora(unet, lora);
  const ref = await runModel(await createSession(merged), merged, feeds);
  assert.ok(maxRelError(ref.get('out_sample')!.data, t('vjp.out_sample').data) < 1e-4);
});

test('SD 2.x-style UNet (linear projections, 2 transformer layers, scalar float timestep): structure finds the scope names', () => {
  const config = {
    ...TINY_UNET_CONFIG, layers_per_block: 2, use_linear_projection: true, transformer_layers_per_block: 2, attention_head_dim: [2, 4, 4],
    block_out_channels: [32, 64, 64], down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  };
  const unet = buildUNet(config, { timestep: 'float-scalar' });
  const byScope = findLoraTargets(unet, { detection: 'scope' }).map((t) => t.module);
  assert.ok(byScope.includes('up_blocks.2.attentions.2.transformer_blocks.1.attn2.to_out.0'));
  assert.ok(byScope.includes('mid_block.attentions.0.transformer_blocks.1.attn1.to_q'));
  assert.deepEqual(findLoraTargets(stripNodeNames(unet), { detection: 'structure' }).map((t) => t.module), byScope);
});

test('a UNet whose attention projections are Einsum nodes fails naming them, their count and what LoRA needs', () => {
  const unet = buildUNet(TINY_UNET_CONFIG);
  const index = new GraphIndex(unet.graph);
  let converted = 0;
  for (const n of unet.graph.nodes) {
    if (!/\/to_(q|k|v|out\.0)\//.test(n.name) || !linearLayerOf(index, n)) continue;
    n.opType = 'Einsum';
    n.attrs = { equation: A.s('...i,io->...o') };
    converted++;
  }
  assert.ok(converted >= 8);
  assert.throws(() => findLoraTargets(unet), new RegExp(`the layers named to_q/to_k/to_v/to_out\\.0 are Einsum nodes \\(${converted} of them, e\\.g\\. "[^"]*to_q[^"]*"\\)\\. ` +
    'LoRA needs MatMul or Gemm linear layers with a constant 2-D weight: re-export the UNet from diffusers with optimum-cli export onnx'));
  assert.throws(() => findLoraTargets(stripNodeNames(unet)), new RegExp('no node is named for these layers and no attention block .* was recognised; ' +
    `the graph has Einsum nodes \\(${converted} of them, e\\.g\\. "node_\\d+"\\).* and \\d+ Softmax node`));
});

test('a fractional LoRA rank is refused before any graph is built', () => {
  assert.throws(() => injectLora(tinyLinearModel(), { rank: 1.5, alpha: 2, targets: ['to_q'] }), /positive integer, got 1\.5/);
});

test('merging a LoRA with a module the model lacks fails naming it, instead of dropping that part of the LoRA', () => {
  const model = tinyLinearModel();
  const weights: LoraWeights = { rank: 1, alpha: 1, modules: new Map() };
  const mod = { inFeatures: 3, outFeatures: 4, A: randomValues(3, 1), B: randomValues(4, 2) };
  weights.modules.set('blk.attn.to_q', mod);
  weights.modules.set('other.attn.to_q', mod);
  assert.throws(() => mergeLora(model, weights), /LoRA module other\.attn\.to_q matches no layer/);
});

test('adapter weights sized for another layer are refused when fed, naming both sizes', () => {
  const inj = injectLora(tinyLinearModel(), { rank: 1, alpha: 1, targets: ['to_q'] });
  const weights: LoraWeights = { rank: 1, alpha: 1, modules: new Map([['blk.attn.to_q', { inFeatures: 3, outFeatures: 5, A: randomValues(3, 1), B: randomValues(5, 2) }]]) };
  assert.throws(() => loraFeeds(inj.adapters, weights), /blk\.attn\.to_q is 3->5, the model's layer is 3->4/);
});

test('a merged model no longer carries the weights the merge replaced (the export is not twice as large)', () => {
  const model = tinyLinearModel();
  const inj = injectLora(model, { rank: 1, alpha: 1, targets: ['to_q', 'to_k'] });
  const merged = mergeLora(model, initLoraWeights(inj.adapters, 1, 1, 3));
  assert.equal(merged.graph.initializers.size, model.graph.initializers.size);
  assert.ok(!merged.graph.initializers.has('wq') && !merged.graph.initializers.has('wk'));
});

test('two layers whose node names give the same LoRA module are refused, not both adapted under one name', () => {
  const model = tinyLinearModel();
  model.graph.nodes.find((n) => n.name === '/blk/attn/to_k/MatMul')!.name = '/blk/attn/to_q/MatMul';
  // another scoped node, so `blk/attn/to_q` is not taken for a wrapper prefix common to every node
  model.graph.nodes.push({ name: '/head/Identity', opType: 'Identity', domain: '', inputs: ['q'], outputs: ['q_copy'], attrs: {} });
  assert.throws(() => findLoraTargets(model, { targets: ['to_q'] }), /two layers map to the LoRA module blk\.attn\.to_q/);
});

test('structure detection adapts only the layers the user listed', () => {
  const unet = stripNodeNames(buildUNet(TINY_UNET_CONFIG));
  const modules = findLoraTargets(unet, { detection: 'structure', targets: ['to_v'] }).map((t) => t.module);
  assert.ok(modules.length >= 2);
  assert.ok(modules.every((m) => m.endsWith('.to_v')), modules.join(', '));
});
