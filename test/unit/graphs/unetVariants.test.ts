import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildUNet, UNetConfig } from '../../../src/core/graphs/unet';
import { extractStateDict } from './stateDict';
import { DataType } from '../../../src/core/onnx/ir';
import { TINY_UNET_CONFIG, noise, ort, relError, runModel } from './helpers';

// SD 2.x style in miniature: per-block head counts, linear projections, 3 blocks, 2 layers each, 8 groups.
const SD2_STYLE: UNetConfig = {
  sample_size: 8, in_channels: 4, out_channels: 4, layers_per_block: 2, block_out_channels: [16, 32, 32],
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  cross_attention_dim: 24, attention_head_dim: [2, 4, 4], use_linear_projection: true, norm_num_groups: 8,
};

function feeds(batch: number, size: number, seq: number, cross: number, timestep: ort.Tensor): Record<string, ort.Tensor> {
  return {
    sample: new ort.Tensor('float32', noise(batch * 4 * size * size, 1), [batch, 4, size, size]),
    encoder_hidden_states: new ort.Tensor('float32', noise(batch * seq * cross, 2), [batch, seq, cross]),
    timestep,
  };
}

test('SD 2.x-style UNet (linear projections, float scalar timestep, head list) runs with the right shape', async () => {
  const model = buildUNet(SD2_STYLE, { timestep: 'float-scalar', seed: 3 });
  const ts = model.graph.inputs.find((i) => i.name === 'timestep')!;
  assert.equal(ts.elemType, DataType.FLOAT);
  assert.deepEqual(ts.shape, []);
  assert.ok(model.graph.initializers.get('down_blocks.0.attentions.0.proj_in.weight')!.dims.length === 2, 'proj_in is a linear');
  const out = await runModel(model, feeds(2, 8, 5, 24, new ort.Tensor('float32', new Float32Array([500]), [])));
  assert.deepEqual(out.out_sample.dims, [2, 4, 8, 8]);
  const y = out.out_sample.data as Float32Array;
  assert.ok(y.every(Number.isFinite));
  const max = y.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(max > 1e-3 && max < 100, `random-weight outputs stay O(1), got max ${max}`);
});

test('a scalar timestep means the same as that timestep for every batch row', async () => {
  const scalar = await runModel(buildUNet(SD2_STYLE, { timestep: 'float-scalar', seed: 3 }), feeds(2, 8, 5, 24, new ort.Tensor('float32', new Float32Array([250]), [])));
  const batch = await runModel(buildUNet(SD2_STYLE, { timestep: 'float-batch', seed: 3 }), feeds(2, 8, 5, 24, new ort.Tensor('float32', new Float32Array([250, 250]), [2])));
  const ints = await runModel(buildUNet(SD2_STYLE, { seed: 3 }), feeds(2, 8, 5, 24, new ort.Tensor('int64', new BigInt64Array([250n, 250n]), [2])));
  assert.ok(relError(scalar.out_sample.data as Float32Array, batch.out_sample.data as Float32Array) < 1e-6);
  assert.ok(relError(ints.out_sample.data as Float32Array, batch.out_sample.data as Float32Array) < 1e-6);
});

test('random weights are reproducible from the seed and differ between seeds', () => {
  const w = (seed: number): Float32Array => buildUNet(TINY_UNET_CONFIG, { seed }).graph.initializers.get('conv_in.weight')!.data as Float32Array;
  assert.deepEqual(w(7), w(7));
  assert.notDeepEqual(w(7), w(8));
});

test('opset 14 (LayerNorm decomposed) computes the same as opset 17', async () => {
  const f = feeds(1, 8, 3, 32, new ort.Tensor('int64', new BigInt64Array([10n]), [1]));
  const a = await runModel(buildUNet(TINY_UNET_CONFIG, { seed: 1 }), f);
  const m14 = buildUNet(TINY_UNET_CONFIG, { seed: 1, opset: 14 });
  assert.ok(!m14.graph.nodes.some((n) => n.opType === 'LayerNormalization'));
  const b = await runModel(m14, f);
  assert.ok(relError(b.out_sample.data as Float32Array, a.out_sample.data as Float32Array) < 1e-5);
});

test('node scopes and weight names follow the exporter and diffusers', () => {
  const g = buildUNet(TINY_UNET_CONFIG).graph;
  const q = g.nodes.find((n) => n.name === '/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul');
  assert.ok(q, 'to_q MatMul keeps its module scope');
  assert.equal(q.inputs[1], 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight');
  assert.deepEqual(g.initializers.get(q.inputs[1])!.dims, [32, 32]);
  const k2 = g.nodes.find((n) => n.name === '/down_blocks.0/attentions.0/transformer_blocks.0/attn2/to_k/MatMul')!;
  assert.deepEqual(k2.inputs, ['encoder_hidden_states', 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight']);
  assert.deepEqual(g.inputs.map((i) => [i.name, i.shape]), [
    ['sample', ['batch', 4, 'height', 'width']], ['timestep', ['batch']], ['encoder_hidden_states', ['batch', 'sequence', 32]],
  ]);
  assert.deepEqual(g.outputs.map((o) => [o.name, o.shape]), [['out_sample', ['batch', 4, 'height', 'width']]]);
});

test('unsupported configs fail with a message naming the problem', () => {
  assert.throws(() => buildUNet({ ...TINY_UNET_CONFIG, down_block_types: ['AttnDownBlock2D', 'DownBlock2D'] }), /"AttnDownBlock2D" is not supported/);
  assert.throws(() => buildUNet({ ...TINY_UNET_CONFIG, norm_num_groups: 5 }), /do not split into 5 groups/);
  assert.throws(() => buildUNet({ ...TINY_UNET_CONFIG, attention_head_dim: [8] }), /attention_head_dim list needs 2 entries/);
});

test('exporter-style anonymous linear weights round-trip through extractStateDict', async () => {
  const anon = buildUNet(SD2_STYLE, { seed: 4, anonymousLinears: true });
  const q = anon.graph.nodes.find((n) => n.name === '/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul')!;
  assert.match(q.inputs[1], /^onnx::MatMul_\d+$/);
  const sd = extractStateDict(anon);
  const named = buildUNet(SD2_STYLE, { weights: sd });
  assert.deepEqual([...sd.keys()].filter((k) => !named.graph.initializers.has(k)), []);
  const f = feeds(1, 8, 4, 24, new ort.Tensor('int64', new BigInt64Array([99n]), [1]));
  const a = await runModel(anon, f);
  const b = await runModel(named, f);
  assert.equal(relError(a.out_sample.data as Float32Array, b.out_sample.data as Float32Array), 0);
});
