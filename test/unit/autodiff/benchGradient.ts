// Benchmark (not a test): build the training gradient of an SD 1.5-structured UNet (same blocks, layers and
// attention layout as SD 1.5, narrow channels so it fits in memory) wrt the sample and every attention projection.
// Run: node --import tsx test/unit/autodiff/benchGradient.ts
import { buildGradientGraph } from '../../../src/core/autodiff/gradient';
import { buildUNet } from '../../../src/core/graphs/unet';
import { SD15_UNET_CONFIG } from '../../../src/core/graphs/presets';
import { specialize } from '../../../src/core/onnx/specialize';

const t0 = performance.now();
const unet = buildUNet({ ...SD15_UNET_CONFIG, block_out_channels: [32, 64, 64, 64], cross_attention_dim: 32 }, { anonymousLinears: true });
const t1 = performance.now();
const targets = unet.graph.nodes.filter((n) => /\/attn[12]\/to_(q|k|v|out\/0|out\.0)\/MatMul$/.test(n.name)).map((n) => n.inputs[1]);
const { model, shapes } = specialize(unet, { dims: { batch: 2, height: 64, width: 64, sequence: 77 }, preserve: new Set(targets) });
const t2 = performance.now();
const { model: gm } = buildGradientGraph(model, { shapes, wrt: ['sample', ...targets], cotangents: ['out_sample'], keepForwardOutputs: true });
const t3 = performance.now();
const grad = gm.graph.nodes.filter((n) => n.name.startsWith('grad/')).length;
console.log(`UNet build ${(t1 - t0).toFixed(0)} ms (${unet.graph.nodes.length} nodes); specialize ${(t2 - t1).toFixed(0)} ms (${model.graph.nodes.length} nodes);`
  + ` gradient ${(t3 - t2).toFixed(0)} ms wrt sample + ${targets.length} attention weights -> ${gm.graph.nodes.length} nodes (${grad} gradient nodes)`);
