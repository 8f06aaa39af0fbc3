// Benchmark (not a test): specialize a UNet-sized graph made of chained copies of the fixture UNet.
// Run: node --import tsx test/unit/onnx/benchSpecialize.ts [copies=2]
import { Graph, Model, cloneModel, emptyGraph } from '../../../src/core/onnx/ir';
import { loadModel } from '../../../src/core/onnx/proto';
import { specialize } from '../../../src/core/onnx/specialize';
import { fixture } from '../fixtures';

/** `copies` UNets in sequence: copy k's out_sample feeds copy k+1's sample; timestep and text are shared. */
function chained(unet: Model, copies: number): Model {
  const g: Graph = emptyGraph('chain');
  g.inputs = unet.graph.inputs.map((v) => ({ ...v }));
  const shared = new Set(['timestep', 'encoder_hidden_states']);
  let prev = 'sample';
  for (let k = 0; k < copies; k++) {
    const c = cloneModel(unet).graph;
    const rn = (x: string) => (!x || shared.has(x) ? x : x === 'sample' ? prev : `c${k}/${x}`);
    for (const n of c.nodes) g.nodes.push({ ...n, name: `c${k}/${n.name}`, inputs: n.inputs.map(rn), outputs: n.outputs.map(rn) });
    for (const [name, t] of c.initializers) g.initializers.set(rn(name), { ...t, name: rn(name) });
    prev = rn('out_sample');
  }
  g.outputs = [{ ...unet.graph.outputs[0], name: prev }];
  return { ...unet, graph: g };
}

const copies = Number(process.argv[2] ?? 2);
const model = chained(loadModel(fixture('reference-sd/unet/model.onnx')), copies);
for (let run = 0; run < 3; run++) {
  const t0 = performance.now();
  const r = specialize(model, { dims: { batch: 2, height: 64, width: 64, sequence: 77 } });
  console.log(`${copies} chained UNets: ${r.nodesBefore} -> ${r.nodesAfter} nodes, ${r.shapes.size} tensors, specialize ${(performance.now() - t0).toFixed(0)} ms`);
}
