/** A training step over a frozen ONNX model with LoRA adapters: forward, loss and LoRA gradients in one ORT session. */
import type * as ort from 'onnxruntime-node';
import { DataType, Model, Node } from '../onnx/ir';
import { specialize } from '../onnx/specialize';
import type { TensorShape } from '../onnx/shapeUtil';
import { buildGradientGraph, lossSeedOf } from '../autodiff/gradient';
import { RECOMPUTE_ATTENTION_DEFAULT } from '../autodiff/recompute';
import { InjectedLora, LoraAdapter, LoraConfig, initLoraWeights, injectLora, loraFeeds } from './lora';
import { LoraWeights } from './loraFile';
import { FeedValue, createSession, runModel } from '../runtime/ortRun';
import type { SessionProviders } from '../runtime/sessionProviders';
import { toFloat16 } from '../onnx/fp16';
import { LossScaler } from './lossScale';
import { standardUnet } from './standardForm';

/** How to build a {@link TrainingSession}. */
export interface TrainingSessionOptions {
  lora: LoraConfig;
  /** Wraps the LoRA-injected model with an objective; the result must have a scalar output named `loss`. */
  objective: (model: Model) => Model;
  /** Values of symbolic dims (e.g. `{ batch: 2, height: 64, width: 64, sequence: 77 }`). */
  dims?: Record<string, number>;
  /** Full shapes of particular inputs (override `dims`). */
  inputShapes?: Record<string, number[]>;
  /** Starting weights; PEFT initialisation with `seed` when absent. */
  weights?: LoraWeights;
  seed?: number;
  /** Extra graph inputs to differentiate (e.g. `sample`); their gradients come back in `inputGrads`. */
  extraWrt?: string[];
  threads?: number;
  /** Providers the training graph tries, best first (default CPU only). */
  providers?: SessionProviders;
  /**
   * 'fp16': the graph computes in float16 (normalisations and `keepFp32Nodes` in float32) with dynamic loss scaling;
   * LoRA weights, their gradients and the optimizer stay float32. Default 'fp32'.
   */
  precision?: 'fp32' | 'fp16';
  /** Nodes kept float32 under fp16, e.g. the loss subgraph. */
  keepFp32Nodes?: (n: Node) => boolean;
  /** First loss scale under fp16 (default 1024). */
  lossScale?: number;
  /** Attention probabilities of at least this many values are recomputed in the backward, not kept (default 2^25; Infinity: never). */
  recomputeAttention?: number;
  /** Sees the specialized forward + loss graph and every tensor's static shape before anything heavy is built; may throw (e.g. a memory check). */
  beforeBuild?: (forward: Model, shapes: Map<string, TensorShape>) => void;
}

/**
 * The float16 training graph's border: LoRA weights go in, and their gradients (`<name>_grad`) come out, as float16
 * converted on the host, the same rounding the graph's Casts would do without two Cast kernels per adapter matrix and
 * run (512 on SD 1.5).
 */
export function loraHalfIo(loraInputs: readonly string[]): (name: string) => boolean {
  const half = new Set([...loraInputs, ...loraInputs.map((k) => `${k}_grad`)]);
  return (name) => half.has(name);
}

/** What one step returns. */
export interface StepResult {
  loss: number;
  /** Every other output of the objective (log_prob, ratio, approx_kl, clipfrac, ...). */
  metrics: Map<string, Float32Array>;
  /** d loss / d parameter, keyed like {@link TrainingSession.params}. */
  grads: Map<string, Float32Array>;
  /** Gradients of `extraWrt` inputs. */
  inputGrads: Map<string, Float32Array>;
  /** fp16 only: the scaled gradients overflowed (they are not finite; skip the update) and the scale was halved. */
  overflow: boolean;
}

/** Timings of building the session, in milliseconds. */
export interface BuildTimings {
  specializeMs: number;
  gradientMs: number;
  sessionMs: number;
  nodes: number;
}

/** A training graph before any session holds it. */
export interface TrainingGraph {
  model: Model;
  adapters: LoraAdapter[];
  /** Under fp16: the loss-seed input that scales every gradient. */
  lossSeed?: { seed: string; dims: number[] };
  timings: Omit<BuildTimings, 'sessionMs'>;
}

/**
 * Brings the export to its standard form (train/standardForm.ts), injects LoRA, appends the objective, specializes shapes and builds the gradient graph (in float16 when asked); no
 * session is opened, so a dry run shows whether training can work (every op differentiable, every shape known).
 */
export function buildTrainingGraph(forward: Model, opts: TrainingSessionOptions): TrainingGraph {
  const injected: InjectedLora = injectLora(standardUnet(forward).model, opts.lora);
  const withLoss = opts.objective(injected.model);
  if (!withLoss.graph.outputs.some((o) => o.name === 'loss')) throw new Error('the training objective has no output named "loss"');
  const lora = injected.adapters.flatMap((a) => [a.inputA, a.inputB]);
  let t = Date.now();
  const spec = specialize(withLoss, { dims: opts.dims, inputShapes: opts.inputShapes, preserve: new Set(lora) });
  const specializeMs = Date.now() - t;
  opts.beforeBuild?.(spec.model, spec.shapes);
  t = Date.now();
  let { model } = buildGradientGraph(spec.model, {
    shapes: spec.shapes, wrt: [...lora, ...(opts.extraWrt ?? [])], loss: 'loss', keepForwardOutputs: true, recomputeAttention: opts.recomputeAttention ?? RECOMPUTE_ATTENTION_DEFAULT,
  });
  let lossSeed: TrainingGraph['lossSeed'];
  if (opts.precision === 'fp16') {
    // d loss/d loss becomes an input: feeding S scales every gradient by S (loss scaling), divided out after the run
    const seed = lossSeedOf(model);
    model.graph.initializers.delete(seed.name);
    model.graph.inputs = [...model.graph.inputs.filter((v) => v.name !== seed.name), { name: seed.name, elemType: DataType.FLOAT, shape: [...seed.dims] }];
    model = toFloat16(model, { keepFp32Nodes: opts.keepFp32Nodes, halfIo: loraHalfIo(lora) }).model;
    lossSeed = { seed: seed.name, dims: [...seed.dims] };
  }
  return { model, adapters: injected.adapters, lossSeed, timings: { specializeMs, gradientMs: Date.now() - t, nodes: model.graph.nodes.length } };
}

/** LoRA training session; parameters are the adapters' A/B matrices, named by their PEFT keys. */
export class TrainingSession {
  private constructor(
    readonly model: Model,
    private readonly session: ort.InferenceSession,
    readonly adapters: LoraAdapter[],
    readonly weights: LoraWeights,
    private readonly extraWrt: string[],
    readonly timings: BuildTimings,
    /** The loss-seed input and its scaler when the graph computes in float16. */
    private readonly scaling?: { seed: string; dims: number[]; scaler: LossScaler },
  ) {}

  /** 'fp16' when the graph computes in float16, and the current loss scale. */
  get precision(): { precision: 'fp32' | 'fp16'; lossScale: number } {
    return { precision: this.scaling ? 'fp16' : 'fp32', lossScale: this.scaling?.scaler.scale ?? 1 };
  }

  /** Builds the training graph ({@link buildTrainingGraph}) and opens one session on it. */
  static async create(forward: Model, opts: TrainingSessionOptions): Promise<TrainingSession> {
    const g = buildTrainingGraph(forward, opts);
    const t = Date.now();
    const session = await createSession(g.model, { threads: opts.threads, providers: opts.providers, name: 'training graph' });
    const sessionMs = Date.now() - t;
    const weights = opts.weights ?? initLoraWeights(g.adapters, opts.lora.rank, opts.lora.alpha, opts.seed ?? 0);
    if (weights.rank !== opts.lora.rank) throw new Error(`LoRA weights have rank ${weights.rank}, the session was built for rank ${opts.lora.rank}`);
    loraFeeds(g.adapters, weights); // validates coverage and shapes now rather than at the first step
    const scaling = g.lossSeed && { ...g.lossSeed, scaler: new LossScaler(opts.lossScale) };
    return new TrainingSession(g.model, session, g.adapters, weights, opts.extraWrt ?? [], { ...g.timings, sessionMs }, scaling);
  }

  /** Trainable tensors by PEFT key; they alias `weights`, so optimizer updates apply to the next step. */
  params(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [k, v] of loraFeeds(this.adapters, this.weights)) out.set(k, v.data);
    return out;
  }

  /** Runs forward + backward on `feeds` (the objective's inputs; LoRA weights are added here). */
  async step(feeds: Record<string, FeedValue> | Map<string, FeedValue>): Promise<StepResult> {
    const scale = this.scaling?.scaler.scale ?? 1;
    const out = await runModel(this.session, this.model, this.allFeeds(feeds, scale));
    const loss = out.get('loss');
    if (!loss) throw new Error('training graph produced no "loss"');
    const grads = new Map<string, Float32Array>();
    const inputGrads = new Map<string, Float32Array>();
    const metrics = new Map<string, Float32Array>();
    for (const [k, v] of out) {
      const kind = this.outputKind(k);
      if (kind === 'param') grads.set(k.slice(0, -5), v.data);
      else if (kind === 'input') inputGrads.set(k.slice(0, -5), v.data);
      else if (k !== 'loss') metrics.set(k, v.data);
    }
    let overflow = false;
    if (this.scaling) {
      for (const g of [...grads.values(), ...inputGrads.values()]) {
        for (let i = 0; i < g.length; i++) { g[i] /= scale; if (!Number.isFinite(g[i])) overflow = true; }
      }
      this.scaling.scaler.observe(!overflow);
    }
    return { loss: loss.data[0], metrics, grads, inputGrads, overflow };
  }

  /**
   * The objective's outputs other than gradients (log_prob, loss, ...) for `feeds`, computed by the very graph `step`
   * runs, so to the same rounding; the loss scale and the gradients are left alone. onnxruntime runs the whole graph
   * whatever is fetched, so this costs a step.
   */
  async evaluate(feeds: Record<string, FeedValue> | Map<string, FeedValue>): Promise<Map<string, Float32Array>> {
    const wanted = this.model.graph.outputs.map((o) => o.name).filter((k) => this.outputKind(k) === 'objective');
    const out = await runModel(this.session, this.model, this.allFeeds(feeds, 0), wanted);
    return new Map([...out].map(([k, v]) => [k, v.data]));
  }

  private paramNames?: Set<string>;

  // an output `<p>_grad` of a LoRA parameter or an extraWrt input, or one of the objective's own outputs
  private outputKind(name: string): 'param' | 'input' | 'objective' {
    if (!name.endsWith('_grad')) return 'objective';
    const base = name.slice(0, -5);
    this.paramNames ??= new Set(this.adapters.flatMap((a) => [a.inputA, a.inputB]));
    if (this.paramNames.has(base)) return 'param';
    return this.extraWrt.includes(base) ? 'input' : 'objective';
  }

  // the caller's feeds, the LoRA weights and, in float16, the loss seed (the gradient scale)
  private allFeeds(feeds: Record<string, FeedValue> | Map<string, FeedValue>, seed: number): Map<string, FeedValue> {
    const all = new Map<string, FeedValue>(feeds instanceof Map ? feeds : Object.entries(feeds));
    for (const [k, v] of loraFeeds(this.adapters, this.weights)) all.set(k, v);
    if (this.scaling) all.set(this.scaling.seed, { dims: this.scaling.dims, data: new Float32Array(Math.max(1, this.scaling.dims.reduce((a, b) => a * b, 1))).fill(seed) });
    return all;
  }

  /** Frees the ORT session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
