import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, Model, cloneModel } from '../../../src/core/onnx/ir';
import { TrainingSession } from '../../../src/core/train/session';
import { AdamW, clipGradNorm } from '../../../src/core/train/adamw';
import { appendMseLoss, randomValues, tinyLinearModel } from './tinyModels';

/** Regress the q output onto a target input. */
function mseOnQ(m: Model): Model {
  const out = cloneModel(m);
  const b = new GraphBuilder(out.graph);
  const target = b.input('target', DataType.FLOAT, [2, 4]);
  b.output(appendMseLoss(b, 'q', target, 17), 'loss', DataType.FLOAT, []);
  return out;
}

test('a LoRA TrainingSession with AdamW drives the loss down', async () => {
  const session = await TrainingSession.create(tinyLinearModel(), { lora: { rank: 2, alpha: 2, targets: ['to_q'] }, objective: mseOnQ, seed: 3 });
  const feeds = { x: { dims: [2, 3], data: randomValues(6, 4) }, target: { dims: [2, 4], data: randomValues(8, 5) } };
  const opt = new AdamW({ lr: 0.05, weightDecay: 0 });
  const params = session.params();
  assert.deepEqual([...params.keys()], ['blk.attn.to_q.lora_A.weight', 'blk.attn.to_q.lora_B.weight']);
  let first = NaN, last = NaN;
  for (let i = 0; i < 60; i++) {
    const r = await session.step(feeds);
    if (i === 0) {
      first = r.loss;
      // B starts at zero, so only B gets a gradient on the first step
      assert.ok(r.grads.get('blk.attn.to_q.lora_A.weight')!.every((v) => v === 0));
      assert.ok(r.grads.get('blk.attn.to_q.lora_B.weight')!.some((v) => v !== 0));
    }
    last = r.loss;
    clipGradNorm(r.grads.values(), 1);
    opt.update(params, r.grads);
  }
  assert.ok(last < first * 0.5, `loss went from ${first} to ${last}`);
  await session.release();
});

test('starting weights of another rank than the session\'s are refused, naming both ranks', async () => {
  const weights = { rank: 4, alpha: 4, modules: new Map([['blk.attn.to_q', { inFeatures: 3, outFeatures: 4, A: randomValues(12, 1), B: new Float32Array(16) }]]) };
  await assert.rejects(TrainingSession.create(tinyLinearModel(), { lora: { rank: 2, alpha: 2, targets: ['to_q'] }, objective: mseOnQ, weights }), /rank 4, the session was built for rank 2/);
});
