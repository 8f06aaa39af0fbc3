/** Variants of the fixture UNet as other exporters write them (the fixtures themselves are located by ../fixtures.ts). */
import { DataType, Model, cloneModel } from '../../../src/core/onnx/ir';
import { specialize } from '../../../src/core/onnx/specialize';
import { saveModel } from '../../../src/core/onnx/proto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { referenceSd as REFERENCE_SD } from '../fixtures';

/** The same UNet with node names replaced by anonymous ones, as exporters that drop scopes produce. */
export function stripNodeNames(model: Model): Model {
  const m = cloneModel(model);
  m.graph.nodes.forEach((n, i) => { n.name = `node_${i}`; });
  return m;
}

/** The same UNet taking a float scalar timestep (SD 2.x exports), cast back to int64 inside. */
export function withScalarFloatTimestep(model: Model): Model {
  const m = cloneModel(model);
  const t = m.graph.inputs.find((v) => v.name === 'timestep');
  if (!t) throw new Error('fixture UNet has no timestep input');
  t.elemType = DataType.FLOAT;
  t.shape = [];
  for (const n of m.graph.nodes) n.inputs = n.inputs.map((x) => (x === 'timestep' ? 'timestep_i64' : x));
  m.graph.nodes.unshift({ name: 'timestep_cast', opType: 'Cast', domain: '', inputs: ['timestep'], outputs: ['timestep_i64'], attrs: { to: { type: 'int', value: DataType.INT64 } } });
  return m;
}

/** The same UNet with every shape fixed (batch, latent size, text length) and the Reshape targets baked, as the dynamo exporter and many hand exports write it. */
export function withStaticShapes(model: Model, dims: { batch: number; height?: number; width?: number; sequence?: number }): Model {
  const s = specialize(model, { dims: { height: 16, width: 16, sequence: 77, ...dims } }).model;
  s.graph.valueInfo = [];
  return s;
}

/**
 * A temp model folder that is the reference fixture but for `unet` (and, when given, the scheduler config): every other
 * file linked, so oracles and conformance read the same data; its weights in `model.onnx_data` with `externalData`.
 * Removed at process exit.
 */
export function variantFolder(unet: Model, opts: { scheduler?: Record<string, unknown>; externalData?: boolean } = {}): string {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'ddpo-variant-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  for (const entry of fs.readdirSync(REFERENCE_SD)) {
    if (entry === 'unet' || (entry === 'scheduler' && opts.scheduler)) continue;
    fs.symlinkSync(join(REFERENCE_SD, entry), join(dir, entry));
  }
  fs.mkdirSync(join(dir, 'unet'));
  for (const f of fs.readdirSync(join(REFERENCE_SD, 'unet'))) if (f !== 'model.onnx') fs.symlinkSync(join(REFERENCE_SD, 'unet', f), join(dir, 'unet', f));
  saveModel(unet, join(dir, 'unet/model.onnx'), opts.externalData ? { externalData: 'model.onnx_data' } : {});
  if (opts.scheduler) {
    fs.mkdirSync(join(dir, 'scheduler'));
    fs.writeFileSync(join(dir, 'scheduler/scheduler_config.json'), JSON.stringify(opts.scheduler));
  }
  return dir;
}
