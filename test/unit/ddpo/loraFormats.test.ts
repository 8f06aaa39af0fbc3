import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSafetensors } from '../../../src/core/safetensors';
import { readLora } from '../../../src/core/train/loraFile';
import { toKohya, toPeftDiffusers } from '../../../src/core/ddpo/loraFormats';
import type { LoraWeights } from '../../../src/core/ddpo/types';

const MODS = ['down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q', 'up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0'];
function lora(alpha: number): LoraWeights {
  const tensors = new Map();
  for (const m of MODS) {
    tensors.set(`${m}.lora_A.weight`, { dtype: 'F32', shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i / 10) });
    tensors.set(`${m}.lora_B.weight`, { dtype: 'F32', shape: [2, 4], data: Float32Array.from({ length: 8 }, (_, i) => 1 + i) });
  }
  return { rank: 4, alpha, tensors };
}

test('PEFT/diffusers file: unet.-prefixed lora_A/lora_B keys, alpha/rank folded into B', () => {
  const { tensors } = toPeftDiffusers(lora(8));
  assert.deepEqual([...tensors.keys()].sort(), [
    'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight',
    'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight',
    'unet.up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0.lora_A.weight',
    'unet.up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0.lora_B.weight',
  ]);
  assert.equal((tensors.get(`unet.${MODS[0]}.lora_B.weight`)!.data as Float32Array)[0], 2); // 1 * 8/4
});

test('kohya file: lora_unet_ names with underscores, lora_down/lora_up and a scalar alpha', () => {
  const { tensors } = toKohya(lora(8));
  const base = 'lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_out_0';
  assert.deepEqual(tensors.get(`${base}.lora_down.weight`)!.shape, [4, 3]);
  assert.deepEqual(tensors.get(`${base}.lora_up.weight`)!.shape, [2, 4]);
  assert.deepEqual([tensors.get(`${base}.alpha`)!.shape, Array.from(tensors.get(`${base}.alpha`)!.data as Float32Array)], [[], [8]]);
  assert.equal(tensors.size, 6);
});

test('both files load back to the same effective adapter (scale x B)', () => {
  const peft = toPeftDiffusers(lora(8));
  const kohya = toKohya(lora(8));
  const a = readLora(encodeSafetensors(peft.tensors, peft.metadata));
  const b = readLora(encodeSafetensors(kohya.tensors, kohya.metadata), { modules: MODS });
  for (const m of MODS) {
    const ea = Array.from(a.modules.get(m)!.B, (v) => (v * a.alpha) / a.rank);
    const eb = Array.from(b.modules.get(m)!.B, (v) => (v * b.alpha) / b.rank);
    assert.deepEqual(ea, eb);
    assert.deepEqual(a.modules.get(m)!.A, b.modules.get(m)!.A);
  }
});
