import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildClipTextEncoder } from '../../../src/core/graphs/clipText';
import { buildUNet } from '../../../src/core/graphs/unet';
import { buildVaeDecoder } from '../../../src/core/graphs/vaeDecoder';
import { writeModelFolder } from '../../../src/core/graphs/modelFolder';
import { loadModelFolder } from '../../../src/core/models/modelFolder';
import { loadModel } from '../../../src/core/onnx/proto';
import { TINY_CLIP_TEXT_CONFIG, TINY_UNET_CONFIG, TINY_VAE_CONFIG, noise, ort, relError, runModel } from './helpers';

const ids = (rows: number[][]): Int32Array => Int32Array.from(rows.flat());

test('CLIP pooler_output is the hidden state at the first eos token', async () => {
  const model = buildClipTextEncoder(TINY_CLIP_TEXT_CONFIG, { seed: 5 });
  const rows = [[998, 5, 6, 999, 999, 999], [998, 7, 8, 9, 10, 999]];
  const out = await runModel(model, { input_ids: new ort.Tensor('int32', ids(rows), [2, 6]) });
  assert.deepEqual(out.last_hidden_state.dims, [2, 6, 32]);
  const h = out.last_hidden_state.data as Float32Array;
  const p = out.pooler_output.data as Float32Array;
  assert.deepEqual(Array.from(p.subarray(0, 32)), Array.from(h.subarray((0 * 6 + 3) * 32, (0 * 6 + 4) * 32)));
  assert.deepEqual(Array.from(p.subarray(32, 64)), Array.from(h.subarray((1 * 6 + 5) * 32, (1 * 6 + 6) * 32)));
});

test('CLIP attention is causal: later tokens do not change earlier hidden states', async () => {
  const model = buildClipTextEncoder(TINY_CLIP_TEXT_CONFIG, { seed: 5 });
  const a = await runModel(model, { input_ids: new ort.Tensor('int32', ids([[998, 5, 6, 999]]), [1, 4]) });
  const b = await runModel(model, { input_ids: new ort.Tensor('int32', ids([[998, 5, 6, 42]]), [1, 4]) });
  const ha = a.last_hidden_state.data as Float32Array;
  const hb = b.last_hidden_state.data as Float32Array;
  assert.deepEqual(Array.from(ha.subarray(0, 96)), Array.from(hb.subarray(0, 96)));
  assert.notDeepEqual(Array.from(ha.subarray(96)), Array.from(hb.subarray(96)));
});

test('CLIP with int64 input_ids and gelu gives finite outputs of the right shape', async () => {
  const model = buildClipTextEncoder({ ...TINY_CLIP_TEXT_CONFIG, hidden_act: 'gelu' }, { inputIds: 'int64' });
  const out = await runModel(model, { input_ids: new ort.Tensor('int64', BigInt64Array.from([998n, 3n, 999n]), [1, 3]) });
  assert.deepEqual(out.pooler_output.dims, [1, 32]);
  assert.ok((out.last_hidden_state.data as Float32Array).every(Number.isFinite));
});

test('VAE decoder upsamples by 2^(blocks-1) and accepts any latent size', async () => {
  const model = buildVaeDecoder({ ...TINY_VAE_CONFIG, block_out_channels: [16, 32, 32], norm_num_groups: 8 }, { seed: 2 });
  const out = await runModel(model, { latent_sample: new ort.Tensor('float32', noise(2 * 4 * 3 * 5, 9), [2, 4, 3, 5]) });
  assert.deepEqual(out.sample.dims, [2, 3, 12, 20]);
  assert.ok((out.sample.data as Float32Array).every(Number.isFinite));
});

test('writeModelFolder writes an SD folder the model loader accepts and whose parts run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ddpo-graphs-'));
  try {
    const tok = join(dir, 'tok-src');
    mkdirSync(tok);
    writeFileSync(join(tok, 'vocab.json'), JSON.stringify({ '<|startoftext|>': 0, '<|endoftext|>': 1, 'a</w>': 2 }));
    writeFileSync(join(tok, 'merges.txt'), '#version: 0.2\n');
    const out = join(dir, 'model');
    writeModelFolder(out, {
      unet: buildUNet(TINY_UNET_CONFIG), textEncoder: buildClipTextEncoder(TINY_CLIP_TEXT_CONFIG), vaeDecoder: buildVaeDecoder(TINY_VAE_CONFIG),
      tokenizerDir: tok, name: 'tiny-test', scalingFactor: 0.5,
    });
    const folder = loadModelFolder(out);
    assert.equal(folder.modelId, 'tiny-test');
    assert.equal(folder.vaeScalingFactor, 0.5);
    assert.equal(folder.unetSampleSize, 16);
    assert.equal(folder.vaeScaleFactor, 2);
    assert.equal(JSON.parse(readFileSync(join(out, 'scheduler/scheduler_config.json'), 'utf8'))._class_name, 'DDIMScheduler');
    const unet = loadModel(folder.unet);
    const y = await runModel(unet, {
      sample: new ort.Tensor('float32', noise(4 * 8 * 8, 1), [1, 4, 8, 8]),
      timestep: new ort.Tensor('int64', new BigInt64Array([500n]), [1]),
      encoder_hidden_states: new ort.Tensor('float32', noise(77 * 32, 2), [1, 77, 32]),
    });
    const direct = await runModel(buildUNet(TINY_UNET_CONFIG), {
      sample: new ort.Tensor('float32', noise(4 * 8 * 8, 1), [1, 4, 8, 8]),
      timestep: new ort.Tensor('int64', new BigInt64Array([500n]), [1]),
      encoder_hidden_states: new ort.Tensor('float32', noise(77 * 32, 2), [1, 77, 32]),
    });
    assert.ok(relError(y.out_sample.data as Float32Array, direct.out_sample.data as Float32Array) === 0, 'saved UNet computes what the built one does');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
