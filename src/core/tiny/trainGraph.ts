/** Training graphs of the tiny models: weights become graph inputs, a scalar loss is differentiated by our autodiff. */
import type * as ort from 'onnxruntime-node';
import { GraphBuilder, A } from '../onnx/builder';
import { cloneModel, DataType, Model } from '../onnx/ir';
import { specialize, SpecializeOptions } from '../onnx/specialize';
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
  const b = new GraphBuilder(g);
  const out = g.outputs[0].name;
  const noise = b.input('noise', DataType.FLOAT, ['batch', 4, 'height', 'width']);
  const d = b.op('Sub', [out, noise]);
  const loss = b.op('ReduceMean', [b.op('Mul', [d, d])], { keepdims: A.i(0) });
  g.outputs = [];
  b.output(loss, 'loss', DataType.FLOAT, []);
  const trainer = await createGraphTrainer(m, trainableWeights(m), { dims: { batch, height: size, width: size, sequence: seq } }, threads);
  return {
    params: trainer.params,
    step: (f) => trainer.step(new Map([['sample', f.sample], ['timestep', f.timestep], ['encoder_hidden_states', f.context], ['noise', f.noise]])),
    release: trainer.release,
  };
}

/** A loss graph compiled with its gradients: the named weights are fed from `params` on every step. */
export interface GraphTrainer {
  params: Map<string, Float32Array>;
  /** Forward + backward on the other inputs; returns the scalar `loss` output and d loss / d weight for every parameter. */
  step(feeds: Map<string, FeedValue>): Promise<{ loss: number; grads: Map<string, Float32Array> }>;
  release(): Promise<void>;
}

/**
 * Turns the initializers `names` of a model whose scalar output is `loss` into graph inputs (their values into
 * `params`), specialises the free dims, differentiates with our autodiff and opens the training session.
 */
export async function createGraphTrainer(model: Model, names: string[], shapes: SpecializeOptions, threads?: number): Promise<GraphTrainer> {
  const m = cloneModel(model);
  const g = m.graph;
  const params = new Map<string, Float32Array>();
  const dims = new Map<string, number[]>();
  for (const n of names) {
    const t = g.initializers.get(n);
    if (!t) throw new Error(`createGraphTrainer: the graph has no weight ${n} to train`);
    params.set(n, Float32Array.from(t.data as Float32Array));
    dims.set(n, [...t.dims]);
    g.initializers.delete(n);
    g.inputs.push({ name: n, elemType: DataType.FLOAT, shape: [...t.dims] });
  }
  const spec = specialize(m, shapes);
  const { model: train } = buildGradientGraph(spec.model, { shapes: spec.shapes, wrt: names, loss: 'loss', keepForwardOutputs: true });
  const session: ort.InferenceSession = await createSession(train, { threads });
  return {
    params,
    async step(feeds) {
      const all = new Map(feeds);
      for (const [k, v] of params) all.set(k, { dims: dims.get(k)!, data: v });
      const res = await runModel(session, train, all);
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

/** Copy of `model` with its trainable initializers replaced by `weights` (same names and sizes). */
export function withWeights(model: Model, weights: Map<string, Float32Array>): Model {
  const m = cloneModel(model);
  for (const [k, v] of weights) {
    const t = m.graph.initializers.get(k);
    if (!t || t.data.length !== v.length) throw new Error(`withWeights: the ${m.graph.name || 'model'} graph has no initializer ${k} of ${v.length} values`);
    m.graph.initializers.set(k, { ...t, data: Float32Array.from(v) });
  }
  return m;
}
