/** The UNet training graph: every UNet weight becomes a graph input, loss = mean((out_sample - noise)²), plus its gradients. */
import type * as ort from 'onnxruntime-node';
import { GraphBuilder, A } from '../onnx/builder';
import { cloneModel, DataType, Model } from '../onnx/ir';
import { specialize } from '../onnx/specialize';
import { buildGradientGraph } from '../autodiff/gradient';
import { createSession, FeedValue, runModel } from '../runtime/ortRun';

/** Names of a built UNet's trainable weights (the state-dict-named float initializers, not the constants). */
export function trainableWeights(unet: Model): string[] {
  return [...unet.graph.initializers.entries()]
    .filter(([k, t]) => t.dataType === DataType.FLOAT && /\.(weight|bias)$/.test(k) && !k.startsWith('const'))
    .map(([k]) => k);
}

/** A compiled training step over a fixed batch shape. */
export interface UNetTrainer {
  params: Map<string, Float32Array>;
  /** Forward + backward; returns the loss and d loss / d weight for every parameter. */
  step(feeds: { sample: FeedValue; timestep: FeedValue; context: FeedValue; noise: FeedValue }): Promise<{ loss: number; grads: Map<string, Float32Array> }>;
  release(): Promise<void>;
}

/** Builds the epsilon-prediction training graph of `unet` for `batch` x 4 x `size`² latents and `seq` x `dim` contexts. */
export async function createUNetTrainer(unet: Model, batch: number, size: number, seq: number, threads?: number): Promise<UNetTrainer> {
  const m = cloneModel(unet);
  const g = m.graph;
  const names = trainableWeights(m);
  const params = new Map<string, Float32Array>();
  const dims = new Map<string, number[]>();
  for (const n of names) {
    const t = g.initializers.get(n)!;
    params.set(n, Float32Array.from(t.data as Float32Array));
    dims.set(n, [...t.dims]);
    g.initializers.delete(n);
    g.inputs.push({ name: n, elemType: DataType.FLOAT, shape: [...t.dims] });
  }
  const b = new GraphBuilder(g);
  const out = g.outputs[0].name;
  const noise = b.input('noise', DataType.FLOAT, ['batch', 4, 'height', 'width']);
  const d = b.op('Sub', [out, noise]);
  const loss = b.op('ReduceMean', [b.op('Mul', [d, d])], { keepdims: A.i(0) });
  g.outputs = [];
  b.output(loss, 'loss', DataType.FLOAT, []);
  const spec = specialize(m, { dims: { batch, height: size, width: size, sequence: seq } });
  const { model } = buildGradientGraph(spec.model, { shapes: spec.shapes, wrt: names, loss: 'loss', keepForwardOutputs: true });
  const session: ort.InferenceSession = await createSession(model, { threads });
  return {
    params,
    async step(f) {
      const feeds = new Map<string, FeedValue>([['sample', f.sample], ['timestep', f.timestep], ['encoder_hidden_states', f.context], ['noise', f.noise]]);
      for (const [k, v] of params) feeds.set(k, { dims: dims.get(k)!, data: v });
      const res = await runModel(session, model, feeds);
      const grads = new Map<string, Float32Array>();
      for (const k of names) {
        const gr = res.get(`${k}_grad`);
        if (!gr) throw new Error(`training graph returned no gradient for ${k}`);
        grads.set(k, gr.data);
      }
      return { loss: res.get('loss')!.data[0], grads };
    },
    release: () => session.release(),
  };
}

/** Copy of `unet` with its trainable initializers replaced by `weights` (same names and sizes). */
export function withWeights(unet: Model, weights: Map<string, Float32Array>): Model {
  const m = cloneModel(unet);
  for (const [k, v] of weights) {
    const t = m.graph.initializers.get(k);
    if (!t || t.data.length !== v.length) throw new Error(`withWeights: the UNet has no initializer ${k} of ${v.length} values`);
    m.graph.initializers.set(k, { ...t, data: Float32Array.from(v) });
  }
  return m;
}
