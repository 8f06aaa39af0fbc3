import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSafetensors, readSafetensorsWithMetadata } from '../../../src/core/safetensors';
import { LoraWeights, encodeLora, kohyaBase, peftKey, readLora } from '../../../src/core/train/loraFile';
import { randomValues } from './tinyModels';

const MODULES = ['down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q', 'up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_out.0'];

function sample(): LoraWeights {
  const w: LoraWeights = { rank: 2, alpha: 8, modules: new Map() };
  MODULES.forEach((m, k) => w.modules.set(m, { inFeatures: 3, outFeatures: 5, A: randomValues(6, k), B: randomValues(10, 10 + k) }));
  return w;
}

test('names follow PEFT and kohya conventions', () => {
  assert.equal(peftKey(MODULES[0], 'A'), 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight');
  assert.equal(kohyaBase(MODULES[0]), 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q');
  const { tensors, metadata } = readSafetensorsWithMetadata(encodeLora(sample(), 'kohya'));
  const base = kohyaBase(MODULES[1]);
  assert.deepEqual(tensors.get(`${base}.lora_down.weight`)!.shape, [2, 3]);
  assert.deepEqual(tensors.get(`${base}.lora_up.weight`)!.shape, [5, 2]);
  assert.deepEqual([...(tensors.get(`${base}.alpha`)!.data as Float32Array)], [8]);
  assert.equal(metadata.ss_network_dim, '2');
});

test('PEFT -> kohya -> PEFT round-trips every value', () => {
  const w = sample();
  const peft = readLora(encodeLora(w, 'peft'));
  assert.equal(peft.format, 'peft');
  const kohya = readLora(encodeLora(peft, 'kohya'), { modules: MODULES });
  assert.equal(kohya.format, 'kohya');
  for (const r of [peft, kohya]) {
    assert.equal(r.rank, 2);
    assert.equal(r.alpha, 8);
    for (const m of MODULES) {
      assert.deepEqual(r.modules.get(m)!.A, w.modules.get(m)!.A);
      assert.deepEqual(r.modules.get(m)!.B, w.modules.get(m)!.B);
    }
  }
});

test('a kohya module with its own alpha is folded into B so one scale serves all', () => {
  const w = sample();
  const bytes = encodeLora(w, 'kohya');
  const { tensors, metadata } = readSafetensorsWithMetadata(bytes);
  tensors.set(`${kohyaBase(MODULES[1])}.alpha`, { dtype: 'F32', shape: [], data: Float32Array.of(4) });
  const r = readLora(encodeSafetensors(tensors, metadata), { modules: MODULES });
  const got = r.modules.get(MODULES[1])!.B, want = w.modules.get(MODULES[1])!.B;
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i] * 0.5) < 1e-7));
});

test('diffusers-style "unet." prefixes are accepted; unknown kohya keys are refused', () => {
  const w = sample();
  const { tensors } = readSafetensorsWithMetadata(encodeLora(w, 'peft'));
  const prefixed = new Map([...tensors].map(([k, t]) => [`unet.${k}`, t]));
  assert.deepEqual([...readLora(encodeSafetensors(prefixed), { alpha: 8 }).modules.keys()].sort(), [...MODULES].sort());
  assert.throws(() => readLora(encodeLora(w, 'kohya'), { modules: [MODULES[0]] }), /matches no adaptable layer/);
});
