/** The fixture UNet's input gradients (vector-Jacobian product) against PyTorch autograd's. */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildGradientGraph } from '../../../src/core/autodiff/gradient';
import { Model, makeTensor } from '../../../src/core/onnx/ir';
import { loadModel } from '../../../src/core/onnx/proto';
import { specialize } from '../../../src/core/onnx/specialize';
import type { ShapeMap } from '../../../src/core/autodiff/types';
import { SafeTensor, readSafetensors } from '../../../src/core/safetensors';
import { ortShapes, session } from './ortRun';
import { fixture, needsFixture } from '../fixtures';

const UNET = fixture('reference-sd/unet');
const skip = needsFixture('reference-sd/unet/model.onnx');

/** Merges PEFT LoRA pairs into the [in, out] MatMul weights: W' = W + scale (B A)^T; returns module -> weight name. */
function mergeLora(model: Model, lora: Map<string, SafeTensor>, scale: number): Map<string, string> {
  const byName = new Map(model.graph.nodes.map((n) => [n.name.replace(/\//g, '.'), n]));
  const merged = new Map<string, string>();
  for (const [key, a] of lora) {
    if (!key.endsWith('.lora_A.weight')) continue;
    const mod = key.slice(0, -'.lora_A.weight'.length);
    const b = lora.get(`${mod}.lora_B.weight`)!;
    const node = [...byName].find(([n]) => n.endsWith(`.${mod}.MatMul`))?.[1];
    assert.ok(node, `no MatMul node for LoRA module ${mod}`);
    const w = model.graph.initializers.get(node.inputs[1])!;
    const [inF, outF] = w.dims, r = a.shape[0];
    const A = a.data as Float32Array, B = b.data as Float32Array, W = Float32Array.from(w.data as Float32Array);
    for (let i = 0; i < inF; i++) for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += B[o * r + k] * A[k * inF + i];
      W[i * outF + o] += scale * s;
    }
    model.graph.initializers.set(w.name, makeTensor(w.name, w.dataType, w.dims, W));
    merged.set(mod, w.name);
  }
  return merged;
}

function relErr(got: Float32Array, want: Float32Array): number {
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) { err = Math.max(err, Math.abs(got[i] - want[i])); scale = Math.max(scale, Math.abs(want[i])); }
  return err / scale;
}

/** Differentiates the LoRA-merged UNet with shapes from ORT or from specialize(), and compares with the oracle. */
async function checkUnet(shapesFrom: 'ort' | 'specialize'): Promise<void> {
  let model = loadModel(path.join(UNET, 'model.onnx'));
  const oracle = readSafetensors(path.join(UNET, 'oracle.safetensors'));
  const lora = readSafetensors(path.join(UNET, 'lora_peft.safetensors'));
  const weights = mergeLora(model, lora, 8 / 4);
  assert.equal(weights.size, 32);
  const t = (k: string) => oracle.get(k)!;
  const feeds: Record<string, ort.Tensor> = {
    sample: new ort.Tensor('float32', t('fwd.sample').data as Float32Array, t('fwd.sample').shape),
    timestep: new ort.Tensor('int64', BigInt64Array.from(t('fwd.timestep').data as Float32Array, (v) => BigInt(v)), t('fwd.timestep').shape),
    encoder_hidden_states: new ort.Tensor('float32', t('fwd.encoder_hidden_states').data as Float32Array, t('fwd.encoder_hidden_states').shape),
  };
  let shapes: ShapeMap;
  if (shapesFrom === 'ort') shapes = await ortShapes(model, feeds);
  else ({ model, shapes } = specialize(model, { dims: { batch: 2, height: 16, width: 16, sequence: 77 }, preserve: new Set(weights.values()) }));
  const t0 = performance.now();
  const { model: gm, grads } = buildGradientGraph(model, { shapes, wrt: ['sample', 'encoder_hidden_states', ...weights.values()], cotangents: ['out_sample'], keepForwardOutputs: true });
  const ms = performance.now() - t0;
  const fwdNodes = model.graph.nodes.length, total = gm.graph.nodes.length;
  const gradNodes = gm.graph.nodes.filter((n) => n.name.startsWith('grad/')).length;
  console.log(`# UNet gradient graph (${shapesFrom} shapes): built in ${ms.toFixed(0)} ms; ${fwdNodes} forward nodes -> ${total} nodes (${gradNodes} gradient nodes)`);
  assert.ok(gm.graph.nodes.every((n) => n.domain === ''), 'gradient graph must use standard ONNX ops only');

  const s = await session(gm);
  const res = await s.run({ ...feeds, out_sample_grad: new ort.Tensor('float32', t('vjp.R').data as Float32Array, t('vjp.R').shape) });
  await s.release();
  // W'^T = W^T + s B A, so with G = dL/dW' [in, out]: dL/dB = s G^T A^T, dL/dA = s B^T G^T
  let eLora = 0;
  for (const [mod, w] of weights) {
    const G = res[grads[w]].data as Float32Array;
    const a = lora.get(`${mod}.lora_A.weight`)!, b = lora.get(`${mod}.lora_B.weight`)!;
    const [r, inF] = a.shape, outF = b.shape[0];
    const dA = new Float32Array(r * inF), dB = new Float32Array(outF * r);
    const Av = a.data as Float32Array, Bv = b.data as Float32Array;
    for (let i = 0; i < inF; i++) for (let o = 0; o < outF; o++) for (let k = 0; k < r; k++) {
      dB[o * r + k] += 2 * G[i * outF + o] * Av[k * inF + i];
      dA[k * inF + i] += 2 * Bv[o * r + k] * G[i * outF + o];
    }
    eLora = Math.max(eLora, relErr(dA, t(`vjp.grad.${mod}.lora_A.weight`).data as Float32Array), relErr(dB, t(`vjp.grad.${mod}.lora_B.weight`).data as Float32Array));
  }
  const eOut = relErr(res.out_sample.data as Float32Array, t('vjp.out_sample').data as Float32Array);
  const eSample = relErr(res[grads.sample].data as Float32Array, t('vjp.grad.sample').data as Float32Array);
  const eEnc = relErr(res[grads.encoder_hidden_states].data as Float32Array, t('vjp.grad.encoder_hidden_states').data as Float32Array);
  console.log(`# rel. errors: out_sample ${eOut.toExponential(2)}, d/dsample ${eSample.toExponential(2)}, d/dencoder_hidden_states ${eEnc.toExponential(2)}, LoRA A/B (worst of 64) ${eLora.toExponential(2)}`);
  assert.ok(eOut < 1e-4, `LoRA-merged forward differs from the oracle (${eOut})`);
  assert.ok(eSample < 1e-3, `d/dsample differs from PyTorch by ${eSample} of its largest magnitude`);
  assert.ok(eEnc < 1e-3, `d/dencoder_hidden_states differs from PyTorch by ${eEnc} of its largest magnitude`);
  assert.ok(eLora < 1e-3, `LoRA weight gradients (via dL/dW) differ from PyTorch by ${eLora} of their largest magnitude`);
}

test('UNet input and weight gradients match PyTorch autograd (LoRA merged, shapes from an ORT run)', { skip }, () => checkUnet('ort'));
test('UNet gradients match PyTorch autograd on the specialize()d graph', { skip }, () => checkUnet('specialize'));
