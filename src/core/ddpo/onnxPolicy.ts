/**
 * The real DDPO policy: a Stable Diffusion ONNX folder, a LoRA on its UNet, our autodiff training graph and AdamW; and
 * what it shares with the Diffusion-DPO policy (dpoPolicy.ts): the graphs, sampling, AdamW, state.
 */
import type { DdpoConfig } from './config';
import type { Policy, PolicySampleRequest, PolicySamples, PolicyScoreRequest, PolicyState, PolicyTrainRequest, PolicyTrainStats } from './types';
import { StableDiffusionPipeline, type Embeddings } from '../diffusion/pipeline';
import { sampleDdim } from '../diffusion/sampler';
import { unetRows } from '../diffusion/sampleRequest';
import { predictInChunks } from '../diffusion/fastUnet';
import { ddimCoefficients } from '../diffusion/ddim';
import { toRgbImages } from '../diffusion/generate';
import { loadModel } from '../onnx/proto';
import { releaseWeights, type Model } from '../onnx/ir';
import { loraFeeds, type LoraConfig } from '../train/lora';
import { runDdpoBatch, type DdpoBatch } from '../train/ddpoBatch';
import { sdxlTimeIds, unetRoles } from '../diffusion/unetRoles';
import { TrainingSession, type TrainingSessionOptions } from '../train/session';
import { AdamW, clipGradNorm } from '../train/adamw';
import type { LoraWeights } from '../train/loraFile';
import { createSession, type FeedValue } from '../runtime/ortRun';
import { buildSamplingGraph } from './samplingGraph';
import { float32ToHalfBits } from '../safetensors';
import { probeProvider, type SessionProviders } from '../runtime/sessionProviders';
import type { SafeTensor } from '../safetensors';
import { checkMemory, type MemoryEstimate } from './memory';
import { ddpoRunShapes, ddpoTrainingOptions, pipelineShapeSource, type DdpoRunShapesOf } from './trainingGraph';

/** How {@link createOnnxPolicy} builds its sessions. */
export interface OnnxPolicyOptions {
  threads?: number; memoryBudgetBytes?: number; onLog?: (line: string) => void; providers?: SessionProviders;
  /** Overrides: the float precision of both graphs, and fused attention in the sampling graph (default: on GPU providers). */
  precision?: 'fp32' | 'fp16'; fuseAttention?: boolean;
}

/** Opens the model folder and builds the sampling and training sessions (minutes for a full-size UNet). */
export async function createOnnxPolicy(modelDir: string, c: DdpoConfig, opts: OnnxPolicyOptions = {}): Promise<Policy> {
  return new OnnxPolicy(await buildPolicyGraphs(modelDir, c, opts, ddpoTraining(c, opts.onLog)), c);
}

/** What sampling needs of any training plan's shapes: the latent grid and the text length. */
export interface LatentShapes { C: number; h: number; w: number; sequence: number }

/** What a policy runs: the pipeline (text encoder, VAE, schedule), the LoRA training session, the sampling graph's session. */
export interface PolicyGraphs<S extends LatentShapes> {
  pipe: StableDiffusionPipeline;
  roles: ReturnType<typeof unetRoles>;
  /** The training graph's run shapes (the algorithm's own). */
  shapes: S;
  session: TrainingSession;
  sampling: ReturnType<typeof buildSamplingGraph>;
  samplingSession: Awaited<ReturnType<typeof createSession>>;
}

/** An algorithm's training graph: the shapes of one run, and the session options that build its objective on them. */
export interface TrainingPlan<S extends LatentShapes> {
  shapes(pipe: StableDiffusionPipeline, forward: Model): Promise<S>;
  /** `onEstimate` sees the memory estimate before anything heavy is built, and may throw. */
  options(shapes: S, pipe: StableDiffusionPipeline, fp16: boolean, onEstimate: (est: MemoryEstimate) => void): TrainingSessionOptions;
}

// DDPO's plan: CFG + DDIM log-probability + PPO on train_batch_size x train_timesteps_per_run items (or the export's chunks).
function ddpoTraining(c: DdpoConfig, onLog: OnnxPolicyOptions['onLog']): TrainingPlan<DdpoRunShapesOf> {
  return {
    shapes: (pipe, forward) => ddpoRunShapes(pipelineShapeSource(pipe), forward, c, onLog),
    options: (shapes, pipe, fp16, onEstimate) => ddpoTrainingOptions(c, shapes, pipe.schedule.config, fp16, onEstimate),
  };
}

/** Opens the model folder, builds the LoRA sampling graph and the plan's training session (minutes for a full-size UNet). */
export async function buildPolicyGraphs<S extends LatentShapes>(modelDir: string, c: DdpoConfig, opts: OnnxPolicyOptions, plan: TrainingPlan<S>): Promise<PolicyGraphs<S>> {
  // a prompt cut to the text encoder's length is told to the run's log, once per prompt
  const pipe = await StableDiffusionPipeline.load(modelDir, { providers: opts.providers, onWarning: (m) => opts.onLog?.(`warning: ${m}`) });
  // the policy samples with its own LoRA graph: the pipeline's UNet session would only hold memory
  await pipe.releaseUnet();
  const forward = loadModel(pipe.folder.unet);
  const roles = unetRoles(forward);
  const lora: LoraConfig = { rank: c.lora_rank, alpha: c.lora_alpha, targets: c.lora_target_modules };
  const shapes = await plan.shapes(pipe, forward);
  const { ep, fp16 } = await computePrecision(c, opts);
  const session = await TrainingSession.create(forward, {
    ...plan.options(shapes, pipe, fp16, (est) => {
      opts.onLog?.(`memory estimate ${(est.totalBytes / 2 ** 30).toFixed(2)} GB (training ${(est.trainingBytes / 2 ** 30).toFixed(2)} GB, sampling ${(est.samplingBytes / 2 ** 30).toFixed(2)} GB)`);
      checkMemory(est, c, shapes.h, opts.memoryBudgetBytes);
    }),
    threads: opts.threads, providers: opts.providers,
  });
  // Fused attention pays on GPU providers and measures even on the CPU (docs/performance.md), so the CPU
  // keeps the standard-op graph the training graph also uses.
  const sampleBatch = unetRows(c.sample_batch_size, c.sample_guidance_scale);
  const sampling = buildSamplingGraph(forward, { lora, batch: sampleBatch, latent: shapes.h, sequence: shapes.sequence, fp16, fuse: opts.fuseAttention ?? ep !== 'cpu' });
  if (sampling.fusedAttention) opts.onLog?.(`sampling graph: ${sampling.fusedAttention} attention cores fused${sampling.staticBatch ? ` (specialised to UNet batch ${sampling.staticBatch})` : ''}`);
  const samplingSession = await createSession(sampling.model, { threads: opts.threads, providers: opts.providers, name: 'sampling graph' });
  // both sessions hold their own copy of the weights, so the graphs keep only their I/O metadata (freeing 3.4 GB for SD 1.5)
  for (const m of new Set([forward, sampling.model, session.model])) releaseWeights(m);
  return { pipe, roles, shapes, session, sampling, samplingSession };
}

// TRL's mixed_precision 'fp16' (its default) means float16 compute on a GPU provider; the CPU trains in float32
// (decided by the provider that really opens a model: a listed WebGPU without an adapter falls back to the CPU)
// (`opts.precision` overrides, e.g. to run the float16 graphs on the CPU in tests)
async function computePrecision(c: DdpoConfig, opts: OnnxPolicyOptions) {
  const ep = opts.providers && opts.providers.candidates.some((x) => x !== 'cpu') ? (await probeProvider(opts.providers)).ep : 'cpu';
  const fp16 = opts.precision ? opts.precision === 'fp16' : c.mixed_precision === 'fp16' && ep !== 'cpu';
  if (fp16) opts.onLog?.(`training and sampling graphs compute in float16 on ${ep} (mixed_precision "fp16"); LoRA weights, gradients, AdamW and the DDPO loss stay float32`);
  return { ep, fp16 };
}

/**
 * A policy over its built graphs, whatever its algorithm: samples with the current LoRA, steps AdamW on the gradient
 * the algorithm accumulated (see {@link addGradients}), saves and restores its state.
 */
export abstract class LoraPolicy<S extends LatentShapes> implements Pick<Policy, 'sample' | 'update' | 'saveState' | 'loadState' | 'lora' | 'release'> {
  // the LoRA weights as the sampling graph takes them, converted once per sampling batch (they change only in update)
  private samplingLora = new Map<string, FeedValue>();
  // The sampler calls pipe.predict; this view of the pipeline predicts with the current LoRA weights.
  private readonly loraPipe: StableDiffusionPipeline;
  private readonly optConfig: ConstructorParameters<typeof AdamW>[0];
  private opt: AdamW;
  private readonly grads: Map<string, Float32Array>;
  private readonly embCache = new Map<string, Promise<Embeddings>>();

  constructor(protected readonly g: PolicyGraphs<S>, c: DdpoConfig) {
    this.loraPipe = Object.create(g.pipe) as StableDiffusionPipeline;
    this.loraPipe.predict = (sample, batch, height, width, t, context) => this.predict(sample, batch, height, width, t, context);
    this.optConfig = { lr: c.train_learning_rate, beta1: c.train_adam_beta1, beta2: c.train_adam_beta2, eps: c.train_adam_epsilon, weightDecay: c.train_adam_weight_decay };
    this.opt = new AdamW(this.optConfig);
    this.grads = new Map<string, Float32Array>([...g.session.params()].map(([k, p]) => [k, new Float32Array(p.length)]));
  }

  async sample(req: PolicySampleRequest): Promise<PolicySamples> {
    const { pipe, shapes: { C, h, w } } = this.g;
    this.samplingLora = this.samplingLoraFeeds();
    const K = req.prompts.length, D = C * h * w;
    const r = await sampleDdim(this.loraPipe, { prompt: req.prompts, negativePrompt: req.negativePrompt, count: K, seed: req.seed, latentHeight: h, latentWidth: w, steps: req.numSteps, guidance: req.guidanceScale, eta: req.eta, signal: req.signal });
    const last = r.trajectory[r.trajectory.length - 1];
    const img = await pipe.decode(last, K, h, w);
    return {
      images: toRgbImages(img.data, K, img.height, img.width),
      timesteps: r.timesteps,
      latents: Array.from({ length: K }, (_, k) => cat(r.trajectory.map((x) => x.subarray(k * D, (k + 1) * D)))),
      // a deterministic step (σ = 0: linspace spacing's last, to t = 0) has probability 1, as the training graph scores it
      logProbs: Array.from({ length: K }, (_, k) => r.logProbs.map((lp, i) => (ddimCoefficients(pipe.schedule, r.timesteps[i], req.numSteps, req.eta).stdDevT === 0 ? 0 : lp[k]))),
      latentShape: [C, h, w],
    };
  }

  /** Adds `scale` x a training step's gradients to the accumulator the next {@link update} applies. */
  protected addGradients(grads: Map<string, Float32Array>, scale: number): void {
    for (const [k, g] of grads) { const acc = this.grads.get(k)!; for (let i = 0; i < g.length; i++) acc[i] += g[i] * scale; }
  }

  async update(maxGradNorm: number) {
    const gradNorm = clipGradNorm(this.grads.values(), maxGradNorm);
    const applied = Number.isFinite(gradNorm);
    if (applied) this.opt.update(this.g.session.params(), this.grads);
    for (const g of this.grads.values()) g.fill(0);
    return { gradNorm, applied };
  }

  async saveState(): Promise<PolicyState> {
    const tensors = new Map<string, SafeTensor>();
    for (const [k, p] of this.g.session.params()) tensors.set(`lora.${k}`, { dtype: 'F32', shape: [p.length], data: Float32Array.from(p) });
    const o = this.opt.state();
    for (const [k, t] of o.tensors) tensors.set(`opt.${k}`, t);
    return { tensors, meta: { optimizer: { step: o.step } } };
  }

  async loadState(state: PolicyState) {
    for (const [k, p] of this.g.session.params()) {
      const t = state.tensors.get(`lora.${k}`);
      if (!t || t.data.length !== p.length) throw new Error(`checkpoint lacks LoRA tensor ${k} of ${p.length} values; it was saved for a different model or lora_rank`);
      p.set(t.data as Float32Array);
    }
    const optT = new Map([...state.tensors].filter(([k]) => k.startsWith('opt.')).map(([k, t]) => [k.slice(4), t]));
    const step = (state.meta.optimizer as { step?: number } | undefined)?.step as number;
    this.opt = AdamW.fromState({ step, tensors: optT }, this.optConfig, 'checkpoint optimizer state');
  }

  async lora(): Promise<LoraWeights> {
    const w = this.g.session.weights;
    // a copy: training goes on updating the session's arrays in place
    const modules = new Map([...w.modules].map(([m, mod]) => [m, { ...mod, A: Float32Array.from(mod.A), B: Float32Array.from(mod.B) }]));
    // SDXL LoRAs go to kohya files under the SGM UNet's module names, as the tools that load them expect
    return { rank: w.rank, alpha: w.alpha, modules, kohyaNaming: this.g.roles.added ? 'sgm' : 'diffusers' };
  }

  async release() {
    await Promise.all([this.g.session.release(), this.g.samplingSession.release(), this.g.pipe.release()]);
  }

  // One UNet evaluation of the sampling graph with the current LoRA weights. A graph specialised to sample_batch_size
  // prompts runs other batches (the evaluation pass samples one prompt at a time) in chunks of its batch.
  private predict(...[sample, batch, height, width, t, context]: Parameters<StableDiffusionPipeline['predict']>): Promise<Float32Array> {
    return this.predictWith(this.samplingLora, sample, batch, height, width, t, context);
  }

  /** One UNet evaluation of the sampling graph with the given LoRA feeds (in the sampling graph's precision). */
  protected predictWith(lora: Map<string, FeedValue>, ...[sample, batch, height, width, t, context]: Parameters<StableDiffusionPipeline['predict']>): Promise<Float32Array> {
    const { sampling, roles, samplingSession } = this.g;
    return predictInChunks({ session: samplingSession, model: sampling.model, roles, staticBatch: sampling.staticBatch }, sample, batch, height, width, t, context, lora);
  }

  /** The LoRA feeds of the sampling graph: the current weights, or zeros (the base model). */
  protected samplingLoraFeeds(zero = false): Map<string, FeedValue> {
    const { sampling, session } = this.g;
    return new Map([...loraFeeds(sampling.adapters, session.weights)].map(([k, v]) => {
      const data = zero ? new Float32Array(v.data.length) : v.data;
      return [k, sampling.fp16 ? { dims: v.dims, data: float32ToHalfBits(data) } : { dims: v.dims, data }];
    }));
  }

  /** One prompt's embeddings, encoded once (a negative prompt as the sampler encodes it: SDXL zeros an empty one). */
  protected embed(p: string, negative = false): Promise<Embeddings> {
    const key = `${negative ? 'negative' : 'prompt'}:${p}`;
    let e = this.embCache.get(key);
    if (!e) { e = this.g.pipe.encodePrompts([p], { negative }); this.embCache.set(key, e); }
    return e;
  }
}

// DDPO's policy: the PPO gradient of sampled transitions.
class OnnxPolicy extends LoraPolicy<DdpoRunShapesOf> implements Policy {
  async accumulate(req: PolicyTrainRequest): Promise<PolicyTrainStats> {
    const r = await runDdpoBatch(this.g.session, this.g.shapes, await this.trainBatch(req, req.oldLogProbs, req.advantages, req.clipRange), 'step');
    this.addGradients(r.grads, req.lossScale);
    return { loss: r.loss, approxKl: r.approxKl, clipfrac: r.clipfrac, logProbs: r.logProbs };
  }

  async score(req: PolicyScoreRequest): Promise<number[]> {
    // advantage 0: the loss and its gradient vanish; only the log-probabilities are read
    const zeros = new Array(req.prompts.length).fill(0);
    return (await runDdpoBatch(this.g.session, this.g.shapes, await this.trainBatch(req, zeros, zeros, 1), 'evaluate')).logProbs;
  }

  // a batch of transitions as the training graph takes them
  private async trainBatch(req: PolicyScoreRequest, oldLogProbs: number[], advantages: number[], clipRange: number): Promise<DdpoBatch> {
    const co = req.timesteps.map((t) => ddimCoefficients(this.g.pipe.schedule, t, req.numSteps, req.eta));
    const uncond = await Promise.all(req.prompts.map(() => this.embed(req.negativePrompt, true)));
    const cond = await Promise.all(req.prompts.map((p) => this.embed(p)));
    const { h, w } = this.g.shapes;
    return {
      latents: cat(req.latents), nextLatents: cat(req.nextLatents), timesteps: req.timesteps,
      uncondEmbeds: cat(uncond.map((e) => e.data)), condEmbeds: cat(cond.map((e) => e.data)),
      added: this.g.shapes.pooled ? {
        uncondPooled: cat(uncond.map((e) => e.pooled!)), condPooled: cat(cond.map((e) => e.pooled!)),
        timeIds: req.prompts.flatMap(() => sdxlTimeIds(h, w)),
      } : undefined,
      oldLogProbs, advantages, alphaProdT: co.map((x) => x.alphaProdT), alphaProdTPrev: co.map((x) => x.alphaProdTPrev),
      eta: req.eta,
      // Without train_cfg the loss must see the conditional prediction alone: ε_u + 1·(ε_c − ε_u) = ε_c.
      guidanceScale: req.cfg ? req.guidanceScale : 1,
      clipRange,
    };
  }
}

function cat(parts: ArrayLike<number>[]): Float32Array {
  const o = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let k = 0;
  for (const p of parts) { o.set(p, k); k += p.length; }
  return o;
}
