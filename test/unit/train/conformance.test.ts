import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../../../src/core/onnx/proto';
import { ConformanceResult, checkUnetDdpo, checkUnetForward, checkUnetVjp } from '../../../src/core/train/conformance';
import { needsFixture, referenceSd } from '../fixtures';
import { stripNodeNames, withScalarFloatTimestep } from './fixture';

function assertAllPass(results: ConformanceResult[], names: string[]): void {
  assert.deepEqual(results.map((r) => r.name), names);
  for (const r of results) assert.ok(r.passed, `${r.name}: max rel err ${r.maxRelErr} (${r.detail ?? ''})`);
}

const NAMES = {
  fwd: ['unet.fwd.out_sample'],
  vjp: ['unet.vjp.loss', 'unet.vjp.grad.lora', 'unet.vjp.grad.sample', 'unet.vjp.grad.encoder_hidden_states'],
  ddpo: ['unet.ddpo.std', 'unet.ddpo.log_prob', 'unet.ddpo.ratio', 'unet.ddpo.loss', 'unet.ddpo.grad.lora'],
};

test('fixture UNet passes forward, LoRA VJP and DDPO-step conformance', { skip: needsFixture() }, async () => {
  const model = loadModel(join(referenceSd, 'unet/model.onnx'));
  assertAllPass(await checkUnetForward(referenceSd, model), NAMES.fwd);
  assertAllPass(await checkUnetVjp(referenceSd, model), NAMES.vjp);
  assertAllPass(await checkUnetDdpo(referenceSd, model), NAMES.ddpo);
});

test('the same checks pass unchanged without node names and with a float scalar timestep', { skip: needsFixture() }, async () => {
  const model = withScalarFloatTimestep(stripNodeNames(loadModel(join(referenceSd, 'unet/model.onnx'))));
  assertAllPass(await checkUnetForward(referenceSd, model), NAMES.fwd);
  assertAllPass(await checkUnetVjp(referenceSd, model), NAMES.vjp);
  assertAllPass(await checkUnetDdpo(referenceSd, model), NAMES.ddpo);
});
