/**
 * Builds an SD 1.5-sized UNet (860M random parameters) for benchmarks and saves it with external data.
 * Usage: node --import tsx scripts/build-sd15-unet.ts [--out DIR] [--seed N] [--timestep int64-batch|float-batch|float-scalar]
 *        [--check] [--tokenizer DIR]
 *   --check      load the saved file in onnxruntime (CPU) and run one forward at 8x8 latents
 *   --tokenizer  also write a whole SD 1.5-sized pipeline folder (random text encoder and VAE) using this tokenizer
 * The weights are random; never commit the output.
 */
import { performance } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { statSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { buildUNet, TimestepKind } from '../src/core/graphs/unet';
import { buildClipTextEncoder } from '../src/core/graphs/clipText';
import { buildVaeDecoder } from '../src/core/graphs/vaeDecoder';
import { SD15_CLIP_TEXT_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG } from '../src/core/graphs/presets';
import { writeModelFolder } from '../src/core/graphs/modelFolder';
import { saveModel } from '../src/core/onnx/proto';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const out = resolve(flag('out') ?? '.ddpo-cache/sd15-unet');
  const seed = Number(flag('seed') ?? 0);
  const timestep = (flag('timestep') ?? 'int64-batch') as TimestepKind;
  let t = performance.now();
  const unet = buildUNet(SD15_UNET_CONFIG, { seed, timestep });
  const buildS = (performance.now() - t) / 1000;
  const hist: Record<string, number> = {};
  for (const n of unet.graph.nodes) hist[n.opType] = (hist[n.opType] ?? 0) + 1;
  console.log(`built SD 1.5 UNet: ${unet.graph.nodes.length} nodes, ${unet.graph.initializers.size} initializers, ` +
    `${(Number(unet.metadata.parameters) / 1e6).toFixed(2)}M parameters in ${buildS.toFixed(1)} s`);
  console.log(`ops: ${JSON.stringify(hist)}`);

  t = performance.now();
  const tokenizer = flag('tokenizer');
  const unetFile = tokenizer ? join(out, 'unet', 'model.onnx') : join(out, 'model.onnx');
  if (tokenizer) {
    writeModelFolder(out, {
      unet, textEncoder: buildClipTextEncoder(SD15_CLIP_TEXT_CONFIG, { seed }), vaeDecoder: buildVaeDecoder(SD15_VAE_CONFIG, { seed }),
      tokenizerDir: tokenizer, name: 'sd15-random', externalData: true,
    });
  } else {
    saveModel(unet, unetFile, { externalData: 'model.onnx_data' });
  }
  const data = statSync(join(unetFile, '..', 'model.onnx_data')).size;
  console.log(`saved ${unetFile} (+ model.onnx_data, ${(data / 1e9).toFixed(2)} GB) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  if (process.argv.includes('--check')) {
    t = performance.now();
    const session = await ort.InferenceSession.create(unetFile);
    console.log(`onnxruntime loaded it in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const n = 4 * 8 * 8;
    const ts = timestep === 'int64-batch' ? new ort.Tensor('int64', new BigInt64Array([500n]), [1])
      : new ort.Tensor('float32', new Float32Array([500]), timestep === 'float-scalar' ? [] : [1]);
    t = performance.now();
    const r = await session.run({
      sample: new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(i)), [1, 4, 8, 8]),
      timestep: ts,
      encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 77 * 768 }, (_, i) => Math.cos(i)), [1, 77, 768]),
    });
    const y = r.out_sample.data as Float32Array;
    const max = y.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    console.log(`forward at 8x8 latents: ${((performance.now() - t) / 1000).toFixed(1)} s, out_sample ${r.out_sample.dims.join('x')}, ` +
      `max |y| ${max.toFixed(3)}, all finite: ${y.every(Number.isFinite)}`);
    await session.release();
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
