/** Variants of the fixture UNet as other exporters write them (the fixtures themselves are located by ../fixtures.ts). */
import { DataType, Model, cloneModel } from '../../../src/core/onnx/ir';

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
