/** The UNet a benchmark runs: the reference fixture, a random-weight SD 1.5 UNet, or a given model; saved once per precision. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFileSync } from '../fsutil';
import { Model } from '../onnx/ir';
import { loadModel, saveModel } from '../onnx/proto';
import { buildUNet } from '../graphs/unet';
import { SD15_UNET_CONFIG, SDXL_UNET_CONFIG, TINY_SDXL_UNET_CONFIG } from '../graphs/presets';
import type { UNetConfig } from '../graphs/unet';
import { specialize } from '../onnx/specialize';
import { unetDimOverrides, unetRoles } from '../diffusion/unetRoles';
import { toFloat16 } from '../onnx/fp16';
import { fuseAttention } from '../onnx/fuseAttention';

/**
 * How the attention core runs: `decomposed` (standard ops, what training graphs use), `mha` (one
 * com.microsoft.MultiHeadAttention per layer) or `mha-fold` (the batch folded into the heads, so the kernel sees batch 1).
 */
export type AttentionVariant = 'decomposed' | 'mha' | 'mha-fold';
export const ATTENTION_VARIANTS: readonly AttentionVariant[] = ['decomposed', 'mha', 'mha-fold'];

/** Which file of a UNet to open: its precision and, for fused attention, the static shape it was specialised to. */
export interface UnetFileOptions {
  attention?: AttentionVariant;
  batch?: number;
  latent?: number;
}

/** A UNet to benchmark, with lazily built in-memory graph and on-disk files. */
export interface BenchUnet {
  name: string;
  /** The float32 graph (built or loaded on first use, then kept). */
  model(): Model;
  /** An ONNX file of the UNet in `precision` (written to the cache on first use; SD 1.5 files are reused across runs). */
  file(precision: 'fp32' | 'fp16', opts?: UnetFileOptions): string;
  /** Milliseconds spent building or loading the graph. */
  buildMs?: number;
  parameters?: number;
}

/** The reference fixture folder (`<repo>/../shared/fixtures/reference-sd`), from the working directory. */
export function fixtureUnetFile(root = process.cwd()): string {
  const f = path.resolve(root, '../shared/fixtures/reference-sd/unet/model.onnx');
  if (!fs.existsSync(f)) throw new Error(`--unet fixture needs ${f} (the shared test fixtures); pass --unet DIR or --unet sd15 instead`);
  return f;
}

/** UNets built from a config with random weights (seed 0, so the same graph every run): SD 1.5, SDXL base, SDXL's topology in miniature. */
const BUILT: Record<string, { config: UNetConfig; what: string }> = {
  sd15: { config: SD15_UNET_CONFIG, what: 'the SD 1.5 UNet' },
  sdxl: { config: SDXL_UNET_CONFIG, what: 'the SDXL base UNet (2.6B parameters, ~10 GB of float32 weights)' },
  'sdxl-tiny': { config: TINY_SDXL_UNET_CONFIG, what: "SDXL's topology in miniature" },
};

/** Resolves `--unet sd15|sdxl|sdxl-tiny|fixture|DIR|FILE`; `cacheDir` receives generated files (SD 1.5 and fp16 copies are ~1.7-3.4 GB, SDXL's ~5-10 GB). */
export function resolveBenchUnet(which: string, cacheDir: string, log: (line: string) => void = () => {}): BenchUnet {
  let model: Model | undefined;
  const files = new Map<string, string>();
  const built = BUILT[which];
  const unet: BenchUnet = {
    name: built || which === 'fixture' ? which : path.basename(path.resolve(which)),
    model() {
      if (model) return model;
      const t = Date.now();
      if (built) {
        log(`building ${built.what} (random weights)…`);
        model = buildUNet(built.config, { seed: 0 });
      } else model = loadModel(unet.file('fp32'));
      unet.buildMs = Date.now() - t;
      unet.parameters = [...model.graph.initializers.values()].reduce((n, x) => n + x.data.length, 0);
      return model;
    },
    file(precision, opts = {}) {
      const attention = opts.attention ?? 'decomposed';
      // with a batch and latent the file is specialised to that static shape (what training graphs are too)
      const key = opts.batch && opts.latent ? `${precision}-${attention}-b${opts.batch}-l${opts.latent}` : precision;
      const hit = files.get(key);
      if (hit) return hit;
      let f: string;
      if (key === 'fp32' && !built) {
        f = which === 'fixture' ? fixtureUnetFile() : fs.statSync(which).isDirectory()
          ? [path.join(which, 'unet/model.onnx'), path.join(which, 'model.onnx')].find((p) => fs.existsSync(p)) ?? path.join(which, 'unet/model.onnx')
          : which;
        if (!fs.existsSync(f)) throw new Error(`no UNet at ${f}; pass a model folder (with unet/model.onnx), an .onnx file, 'sd15', 'sdxl', 'sdxl-tiny' or 'fixture'`);
      } else {
        f = path.join(cacheDir, unet.name, key, 'model.onnx');
        // a built graph is rebuilt identically (seed 0), so a completed file from an earlier run is the same file
        if (!built || !fs.existsSync(`${f}.done`)) {
          const t = Date.now();
          let m = unet.model();
          if (attention !== 'decomposed' && (!opts.batch || !opts.latent)) throw new Error(`attention '${attention}' needs the static batch and latent size`);
          // exports compute reshape shapes at run time; the static session shape folds them (and lets the fuser match)
          if (opts.batch && opts.latent) m = specialize(m, { dims: unetDimOverrides(m, opts.batch, opts.latent, Number(unetRoles(m).encoderHiddenStates.shape?.[1]) || 77) }).model;
          if (attention !== 'decomposed') {
            const r = fuseAttention(m, { foldBatch: attention === 'mha-fold' ? opts.batch : undefined });
            if (!r.fused) throw new Error(`attention '${attention}': no attention core of ${unet.name} matched the decomposed pattern`);
            log(`fused ${r.fused} attention cores (${attention})`);
            m = r.model;
          }
          if (precision === 'fp16') m = toFloat16(m).model;
          fs.rmSync(`${f}.done`, { force: true });
          saveModel(m, f, { externalData: 'model.onnx_data' });
          atomicWriteFileSync(`${f}.done`, new Date().toISOString());
          log(`wrote ${f} (${key}) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
        }
      }
      files.set(key, f);
      return f;
    },
  };
  return unet;
}
