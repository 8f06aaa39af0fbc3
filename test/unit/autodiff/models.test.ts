/** Whole fixture models (text encoder, VAE decoder, CLIP vision): gradients vs directional finite differences. */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildGradientGraph } from '../../../src/core/autodiff/gradient';
import { DataType, Model, cloneModel, makeTensor } from '../../../src/core/onnx/ir';
import { loadModel } from '../../../src/core/onnx/proto';
import { readSafetensors } from '../../../src/core/safetensors';
import { rng } from './gradcheck';
import { ortShapes, session } from './ortRun';
import { fixturesDir, needsFixture } from '../fixtures';

const skip = needsFixture('');

interface Case { dir: string; input: string; intInput?: boolean }
const CASES: Case[] = [
  { dir: 'reference-sd/text_encoder', input: 'input_ids', intInput: true },
  { dir: 'reference-sd/vae_decoder', input: 'latent_sample' },
  { dir: 'reference-clip-vision', input: 'pixel_values' },
];

/** Loss L = sum over outputs of out * R, in double. */
async function loss(model: Model, feeds: Record<string, ort.Tensor>, proj: Map<string, Float32Array>): Promise<number> {
  const s = await session(model);
  const res = await s.run(feeds);
  await s.release();
  let l = 0;
  for (const [o, r] of proj) { const y = res[o].data as Float32Array; for (let i = 0; i < y.length; i++) l += y[i] * r[i]; }
  return l;
}

for (const c of CASES) {
  test(`${c.dir}: gradients wrt the input and every weight agree with a directional finite difference`, { skip }, async () => {
    const model = loadModel(path.join(fixturesDir, c.dir, 'model.onnx'));
    const oracle = readSafetensors(path.join(fixturesDir, c.dir, 'oracle.safetensors'));
    const x = oracle.get(c.input)!;
    const feeds = { [c.input]: c.intInput
      ? new ort.Tensor('int32', Int32Array.from(x.data as Float32Array), x.shape)
      : new ort.Tensor('float32', x.data as Float32Array, x.shape) };
    const shapes = await ortShapes(model, feeds);
    const weights = [...model.graph.initializers.values()].filter((t) => t.dataType === DataType.FLOAT && t.dims.length >= 1 && t.data.length > 1);
    const wrt = [...(c.intInput ? [] : [c.input]), ...weights.map((w) => w.name)];
    const outs = model.graph.outputs.map((o) => o.name);
    const r = rng(7);
    const rand = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * (2 * r() - 1));
    const proj = new Map(outs.map((o) => [o, rand(shapes.get(o)!.dims.reduce((a, d) => a * d, 1))]));
    const { model: gm, grads } = buildGradientGraph(model, { shapes, wrt, cotangents: outs });
    const s = await session(gm);
    const gfeeds = { ...feeds };
    for (const o of outs) gfeeds[`${o}_grad`] = new ort.Tensor('float32', proj.get(o)!, shapes.get(o)!.dims);
    const res = await s.run(gfeeds);
    await s.release();

    // direction v over every wrt tensor; compare <grad, v> with (L(+eps v) - L(-eps v)) / 2 eps
    const dir = new Map(wrt.map((w) => [w, rand(shapes.get(w)!.dims.reduce((a, d) => a * d, 1))]));
    let analytic = 0;
    for (const [w, v] of dir) { const gw = res[grads[w]].data as Float32Array; for (let i = 0; i < v.length; i++) analytic += gw[i] * v[i]; }
    const eps = 1e-3;
    const shifted = async (sign: number) => {
      const m = cloneModel(model);
      const f = { ...feeds };
      for (const [w, v] of dir) {
        if (w === c.input) { const base = x.data as Float32Array; f[w] = new ort.Tensor('float32', base.map((b, i) => b + sign * eps * v[i]), x.shape); continue; }
        const t = m.graph.initializers.get(w)!;
        m.graph.initializers.set(w, makeTensor(w, t.dataType, t.dims, (t.data as Float32Array).map((b, i) => b + sign * eps * v[i])));
      }
      return loss(m, f, proj);
    };
    const numeric = ((await shifted(1)) - (await shifted(-1))) / (2 * eps);
    const rel = Math.abs(analytic - numeric) / Math.abs(numeric);
    console.log(`# ${c.dir}: ${wrt.length} wrt tensors, <grad, v> ${analytic.toFixed(4)} vs finite difference ${numeric.toFixed(4)} (rel ${rel.toExponential(2)})`);
    assert.ok(rel < 1e-2, `directional derivative ${analytic} vs finite difference ${numeric}`);
  });
}
