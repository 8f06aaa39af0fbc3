import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeSafetensors, readSafetensorsWithMetadata, type SafeTensor } from '../../../src/core/safetensors';
import { LoraWeights, encodeLora, kohyaModuleName, peftKey, readLora, targetSuffix } from '../../../src/core/train/loraFile';
import { randomValues } from './tinyModels';
import { writeTorchFile, type TensorSpec } from '../foundation/torchSave';

const MODULES = ['down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q', 'up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_out.0'];

// rank 2, alpha 8: the scale 4 is a power of two, so folding it into B is exact
function sample(): LoraWeights {
  const w: LoraWeights = { rank: 2, alpha: 8, modules: new Map() };
  MODULES.forEach((m, k) => w.modules.set(m, { inFeatures: 3, outFeatures: 5, A: randomValues(6, k), B: randomValues(10, 10 + k) }));
  return w;
}

test('names follow PEFT and kohya conventions', () => {
  assert.equal(peftKey(MODULES[0], 'A'), 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight');
  assert.equal(kohyaModuleName(MODULES[0]), 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q');
  const { tensors, metadata } = readSafetensorsWithMetadata(encodeLora(sample(), 'kohya'));
  const base = kohyaModuleName(MODULES[1]);
  assert.equal(base, 'lora_unet_up_blocks_1_attentions_1_transformer_blocks_0_attn2_to_out_0');
  assert.deepEqual(tensors.get(`${base}.lora_down.weight`)!.shape, [2, 3]);
  assert.deepEqual(tensors.get(`${base}.lora_up.weight`)!.shape, [5, 2]);
  assert.deepEqual([tensors.get(`${base}.alpha`)!.shape, [...(tensors.get(`${base}.alpha`)!.data as Float32Array)]], [[], [8]]);
  assert.equal(tensors.size, 6);
  assert.deepEqual(metadata, { ss_network_module: 'networks.lora', ss_network_dim: '2', ss_network_alpha: '8', ss_training_comment: 'DDPO Studio' });
});

test('PEFT/diffusers file: unet.-prefixed lora_A/lora_B keys, alpha/rank folded into B, adapter metadata for diffusers', () => {
  const w = sample();
  const { tensors, metadata } = readSafetensorsWithMetadata(encodeLora(w, 'peft'));
  assert.deepEqual([...tensors.keys()].sort(), MODULES.flatMap((m) => [`unet.${m}.lora_A.weight`, `unet.${m}.lora_B.weight`]));
  assert.deepEqual(tensors.get(`unet.${MODULES[0]}.lora_A.weight`)!.shape, [2, 3]);
  assert.deepEqual(tensors.get(`unet.${MODULES[0]}.lora_B.weight`)!.shape, [5, 2]);
  assert.equal((tensors.get(`unet.${MODULES[0]}.lora_B.weight`)!.data as Float32Array)[0], w.modules.get(MODULES[0])!.B[0] * 4);
  assert.equal(metadata.format, 'pt');
  assert.deepEqual(JSON.parse(metadata.lora_adapter_metadata), { unet: { r: 2, lora_alpha: 2, target_modules: ['to_out.0', 'to_q'], init_lora_weights: 'gaussian' } });
});

test('target_modules name each layer as PEFT matches it: the last segment, the last two after a numbered one', () => {
  assert.equal(targetSuffix(MODULES[0]), 'to_q');
  assert.equal(targetSuffix(MODULES[1]), 'to_out.0');
  assert.equal(targetSuffix('mid_block.attentions.0.transformer_blocks.0.ff.net.2'), 'net.2');
});

test('PEFT and kohya files round-trip every value (PEFT with the scale folded into B)', () => {
  const w = sample();
  const peft = readLora(encodeLora(w, 'peft'));
  assert.equal(peft.format, 'peft');
  assert.deepEqual([peft.rank, peft.alpha], [2, 2]);
  const kohya = readLora(encodeLora(w, 'kohya'), { modules: MODULES });
  assert.equal(kohya.format, 'kohya');
  assert.deepEqual([kohya.rank, kohya.alpha], [2, 8]);
  for (const m of MODULES) {
    const want = w.modules.get(m)!;
    assert.deepEqual(peft.modules.get(m)!.A, want.A);
    assert.deepEqual(peft.modules.get(m)!.B, want.B.map((v) => v * 4));
    assert.deepEqual(kohya.modules.get(m)!.A, want.A);
    assert.deepEqual(kohya.modules.get(m)!.B, want.B);
  }
  const again = readLora(encodeLora(peft, 'kohya'), { modules: MODULES });
  for (const m of MODULES) assert.deepEqual(again.modules.get(m), peft.modules.get(m));
});

test('both files load back to the same effective adapter (scale x B)', () => {
  const w = { ...sample(), alpha: 6 };
  const a = readLora(encodeLora(w, 'peft'));
  const b = readLora(encodeLora(w, 'kohya'), { modules: MODULES });
  for (const m of MODULES) {
    const ea = Array.from(a.modules.get(m)!.B, (v) => (v * a.alpha) / a.rank);
    const eb = Array.from(b.modules.get(m)!.B, (v) => Math.fround((v * b.alpha) / b.rank));
    assert.deepEqual(ea, eb);
    assert.deepEqual(a.modules.get(m)!.A, b.modules.get(m)!.A);
  }
});

test('a PEFT file with lora_alpha metadata and unscaled B (an earlier writer) still loads with its scale', () => {
  const w = sample();
  const tensors = new Map<string, SafeTensor>();
  for (const [m, mod] of w.modules) {
    tensors.set(peftKey(m, 'A'), { dtype: 'F32', shape: [2, 3], data: mod.A });
    tensors.set(peftKey(m, 'B'), { dtype: 'F32', shape: [5, 2], data: mod.B });
  }
  const r = readLora(encodeSafetensors(tensors, { format: 'peft', r: '2', lora_alpha: '8' }));
  assert.deepEqual([r.rank, r.alpha], [2, 8]);
  for (const m of MODULES) assert.deepEqual(r.modules.get(m), w.modules.get(m));
});

test('a kohya module with its own alpha is folded into B so one scale serves all', () => {
  const w = sample();
  const bytes = encodeLora(w, 'kohya');
  const { tensors, metadata } = readSafetensorsWithMetadata(bytes);
  tensors.set(`${kohyaModuleName(MODULES[1])}.alpha`, { dtype: 'F32', shape: [], data: Float32Array.of(4) });
  const r = readLora(encodeSafetensors(tensors, metadata), { modules: MODULES });
  const got = r.modules.get(MODULES[1])!.B, want = w.modules.get(MODULES[1])!.B;
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i] * 0.5) < 1e-7));
});

test('diffusers-style "unet." prefixes are accepted; unknown kohya keys are refused', () => {
  const w = sample();
  const prefixed = new Map<string, SafeTensor>();
  for (const [m, mod] of w.modules) {
    prefixed.set(`unet.${peftKey(m, 'A')}`, { dtype: 'F32', shape: [2, 3], data: mod.A });
    prefixed.set(`unet.${peftKey(m, 'B')}`, { dtype: 'F32', shape: [5, 2], data: mod.B });
  }
  const r = readLora(encodeSafetensors(prefixed), { alpha: 8 });
  assert.deepEqual([...r.modules.keys()].sort(), [...MODULES].sort());
  assert.equal(r.alpha, 8);
  assert.throws(() => readLora(encodeLora(w, 'kohya'), { modules: [MODULES[0]] }), /matches no adaptable layer/);
});

test('a LoRA in PEFT\'s own key naming (base_model.model. prefix, lora_A.default adapter name) loads onto the same UNet modules', () => {
  // what peft's get_peft_model().state_dict() writes: a file a user brings from a PEFT training script
  const w = sample();
  for (const name of [(m: string, x: 'A' | 'B') => `base_model.model.${peftKey(m, x)}`, (m: string, x: 'A' | 'B') => `${m}.lora_${x}.default.weight`]) {
    const tensors = new Map<string, SafeTensor>();
    for (const [m, mod] of w.modules) {
      tensors.set(name(m, 'A'), { dtype: 'F32', shape: [2, 3], data: mod.A });
      tensors.set(name(m, 'B'), { dtype: 'F32', shape: [5, 2], data: mod.B });
    }
    const r = readLora(encodeSafetensors(tensors), { alpha: 8 });
    assert.deepEqual([...r.modules.keys()].sort(), [...MODULES].sort(), name('m', 'A'));
    for (const m of MODULES) assert.deepEqual(r.modules.get(m), w.modules.get(m));
  }
});

test('a kohya LoRA saved with torch.save (.pt) reads as the same adapter as its safetensors file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lora-pt-'));
  try {
    const w = sample();
    const specs: Record<string, TensorSpec> = {};
    [...readSafetensorsWithMetadata(encodeLora(w, 'kohya')).tensors].forEach(([k, t], i) => (specs[k] = { storage: { key: String(i), dtype: t.dtype, data: t.data }, shape: t.shape }));
    const file = path.join(dir, 'lora.pt');
    writeTorchFile(file, specs);
    assert.deepEqual(readLora(file, { modules: MODULES }), readLora(encodeLora(w, 'kohya'), { modules: MODULES }));
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
