/** The UNet a benchmark runs: the reference fixture, a random-weight SD 1.5 UNet, or a given model; saved once per precision. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Model } from '../onnx/ir';
import { loadModel, saveModel } from '../onnx/proto';
import { buildUNet } from '../graphs/unet';
import { SD15_UNET_CONFIG } from '../graphs/presets';
import { unetRoles } from '../train/objective';
import { toFloat16 } from './fp16';

/** A UNet to benchmark, with lazily built in-memory graph and on-disk files. */
export interface BenchUnet {
  name: string;
  /** The float32 graph (built or loaded on first use, then kept). */
  model(): Model;
  /** An ONNX file of the UNet in `precision` (written to the cache on first use). */
  file(precision: 'fp32' | 'fp16'): string;
  /** Milliseconds spent building or loading the graph. */
  buildMs?: number;
  parameters?: number;
}

/** Symbolic dims of the UNet's inputs mapped to values, for `freeDimensionOverrides` (static-shape sessions). */
export function unetDimOverrides(model: Model, batch: number, latent: number, sequence = 77): Record<string, number> {
  const r = unetRoles(model);
  const out: Record<string, number> = {};
  const set = (d: unknown, v: number) => { if (typeof d === 'string') out[d] = v; };
  set(r.sample.shape?.[0], batch);
  set(r.sample.shape?.[2], latent);
  set(r.sample.shape?.[3], latent);
  set(r.timestep.shape?.[0], batch);
  set(r.encoderHiddenStates.shape?.[0], batch);
  set(r.encoderHiddenStates.shape?.[1], sequence);
  return out;
}

/** The reference fixture folder (`<repo>/../shared/fixtures/reference-sd`), from the working directory. */
export function fixtureUnetFile(root = process.cwd()): string {
  const f = path.resolve(root, '../shared/fixtures/reference-sd/unet/model.onnx');
  if (!fs.existsSync(f)) throw new Error(`--unet fixture needs ${f} (the shared test fixtures); pass --unet DIR or --unet sd15 instead`);
  return f;
}

/** Resolves `--unet sd15|fixture|DIR|FILE`; `cacheDir` receives generated files (SD 1.5 and fp16 copies are ~1.7-3.4 GB). */
export function resolveBenchUnet(which: string, cacheDir: string, log: (line: string) => void = () => {}): BenchUnet {
  let model: Model | undefined;
  const files = new Map<string, string>();
  const unet: BenchUnet = {
    name: which === 'sd15' || which === 'fixture' ? which : path.basename(path.resolve(which)),
    model() {
      if (model) return model;
      const t = Date.now();
      if (which === 'sd15') {
        log('building the SD 1.5 UNet (random weights)…');
        model = buildUNet(SD15_UNET_CONFIG, { seed: 0 });
      } else model = loadModel(unet.file('fp32'));
      unet.buildMs = Date.now() - t;
      unet.parameters = [...model.graph.initializers.values()].reduce((n, x) => n + x.data.length, 0);
      return model;
    },
    file(precision) {
      const hit = files.get(precision);
      if (hit) return hit;
      let f: string;
      if (precision === 'fp32' && which !== 'sd15') {
        f = which === 'fixture' ? fixtureUnetFile() : fs.statSync(which).isDirectory()
          ? [path.join(which, 'unet/model.onnx'), path.join(which, 'model.onnx')].find((p) => fs.existsSync(p)) ?? path.join(which, 'unet/model.onnx')
          : which;
        if (!fs.existsSync(f)) throw new Error(`no UNet at ${f}; pass a model folder (with unet/model.onnx), an .onnx file, 'sd15' or 'fixture'`);
      } else {
        f = path.join(cacheDir, unet.name, precision, 'model.onnx');
        const t = Date.now();
        const m = precision === 'fp16' ? toFloat16(unet.model()).model : unet.model();
        saveModel(m, f, { externalData: 'model.onnx_data' });
        log(`wrote ${f} (${precision}) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      }
      files.set(precision, f);
      return f;
    },
  };
  return unet;
}
