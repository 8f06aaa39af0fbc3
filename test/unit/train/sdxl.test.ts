// An SDXL-shaped UNet built by the graph builder (text_time added conditioning, two text encoders): it samples, trains a
// DDPO step, names its LoRA as SDXL tools do, and the doctor and the memory estimate cover it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { sampleDdim } from '../../../src/core/diffusion/sampler';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { createOnnxPolicy } from '../../../src/core/ddpo/onnxPolicy';
import { encodeLora, readLora } from '../../../src/core/train/loraFile';
import { readSafetensors } from '../../../src/core/safetensors';
import { diagnoseModel } from '../../../src/core/doctor/doctor';
import { formatModelReport } from '../../../src/core/doctor/format';
import { buildUNet } from '../../../src/core/graphs/unet';
import { TINY_SDXL_UNET_CONFIG } from '../../../src/core/graphs/presets';
import { ort, runModel, noise, relError } from '../graphs/helpers';
import { needsFixture } from '../fixtures';
import { tinySdxlFolder } from '../graphs/sdxl';
import { transitionRequest } from '../ddpo/transitions';

test('the builder\'s SDXL UNet takes text_embeds and time_ids into its time embedding', async () => {
  const m = buildUNet(TINY_SDXL_UNET_CONFIG, { seed: 2 });
  assert.deepEqual(m.graph.inputs.map((v) => [v.name, v.shape]), [
    ['sample', ['batch', 4, 'height', 'width']], ['timestep', ['batch']], ['encoder_hidden_states', ['batch', 'sequence', 64]], ['text_embeds', ['batch', 32]], ['time_ids', ['batch', 6]],
  ]);
  assert.ok(m.graph.initializers.has('add_embedding.linear_1.weight') && m.graph.initializers.has('down_blocks.1.attentions.0.transformer_blocks.1.attn1.to_q.weight'));
  const feeds = (ids: number[]) => ({
    sample: new ort.Tensor('float32', noise(4 * 64, 1), [1, 4, 8, 8]), timestep: new ort.Tensor('int64', BigInt64Array.from([500n]), [1]),
    encoder_hidden_states: new ort.Tensor('float32', noise(5 * 64, 2), [1, 5, 64]), text_embeds: new ort.Tensor('float32', noise(32, 3), [1, 32]),
    time_ids: new ort.Tensor('float32', Float32Array.from(ids), [1, 6]),
  });
  const a = (await runModel(m, feeds([64, 64, 0, 0, 64, 64]))).out_sample.data as Float32Array;
  const b = (await runModel(m, feeds([128, 128, 0, 0, 128, 128]))).out_sample.data as Float32Array;
  assert.ok(a.every(Number.isFinite) && relError(a, b) > 1e-4, 'time_ids change the prediction');
});

test('an SDXL-shaped model samples with both text encoders, trains a DDPO step, and names its LoRA in PEFT and kohya (SGM blocks)', { skip: needsFixture() }, async () => {
  const dir = tinySdxlFolder();
  const pipe = await StableDiffusionPipeline.load(dir);
  try {
    const e = await pipe.encodePrompts(['a cat']);
    assert.deepEqual([e.sequence, e.dim, e.pooledDim], [77, 64, 32], 'penultimate states of both encoders side by side; the second\'s pooled projection');
    const empty = await pipe.encodePrompts([''], { negative: true });
    assert.ok(empty.data.every((v) => v === 0) && empty.pooled!.every((v) => v === 0), 'an empty negative prompt is zeros (force_zeros_for_empty_prompt)');
    const r = await sampleDdim(pipe, { prompt: 'a cat', count: 1, seed: 1, steps: 2, guidance: 5, eta: 1, latentHeight: 8, latentWidth: 8 });
    assert.ok(r.logProbs.every((lp) => lp.every(Number.isFinite)));
  } finally { await pipe.release(); }

  const config = parseDdpoConfig({ sample_num_steps: 2, sample_batch_size: 2, train_batch_size: 2, latent_size: 8, lora_rank: 2, train_clip_range: 1e9, train_learning_rate: 3e-2 }).config;
  const policy = await createOnnxPolicy(dir, config);
  try {
    const s = await policy.sample({ prompts: ['a cat', 'a dog'], negativePrompt: '', seed: 1, numSteps: 2, eta: 1, guidanceScale: 5 });
    const step = await policy.accumulate(transitionRequest(s, 0, ['a cat', 'a dog']));
    // the training graph feeds the same pooled embeddings and time_ids as the sampler: it scores the sampler's transitions exactly
    assert.ok(step.approxKl < 1e-8, JSON.stringify(step));
    assert.ok((await policy.update(1)).gradNorm > 0);
    const lora = await policy.lora();
    assert.equal(lora.modules.size, 96);
    const kohya = [...readSafetensors(encodeLora(lora, 'kohya')).keys()];
    for (const k of ['lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q.lora_down.weight', 'lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k.alpha', 'lora_unet_output_blocks_2_1_transformer_blocks_1_attn2_to_out_0.lora_up.weight']) {
      assert.ok(kohya.includes(k), `${k} in ${kohya.slice(0, 4).join(', ')} ...`);
    }
    assert.ok([...readSafetensors(encodeLora(lora, 'peft')).keys()].includes('unet.down_blocks.1.attentions.0.transformer_blocks.1.attn1.to_q.lora_A.weight'));
    const back = readLora(encodeLora(lora, 'kohya'), { modules: [...lora.modules.keys()] });
    assert.equal(back.kohyaNaming, 'sgm');
    assert.deepEqual([...back.modules.keys()].sort(), [...lora.modules.keys()].sort());
  } finally { await policy.release?.(); }

  const report = await diagnoseModel(dir, { ddpo: { train_batch_size: 2, sample_batch_size: 2 } });
  const text = formatModelReport(report).join('\n');
  assert.ok(report.canSample && report.canTrain, text);
  assert.match(text, /model +SDXL-class \(cross-attention 64, added conditioning text_embeds, time_ids\)/);
  assert.match(text, /LoRA +96 layers found by node names: down_blocks\.1 32, mid_block 16, up_blocks\.0 48;.*kohya lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q\.lora_down\.weight \(SDXL: the SGM UNet's block names\)/);
  assert.match(text, /memory +about [\d.]+ GiB at train_batch_size 2, sample_batch_size 2, 16x16 latents/);
});
