/**
 * The Diffusion-DPO policy: a Stable Diffusion ONNX folder, a LoRA on its UNet, and a training graph that runs the
 * LoRA UNet and the base UNet (the same weights with the LoRA switched off) on both images of B rated pairs.
 */
import type { DdpoConfig } from './config';
import { buildPolicyGraphs, LoraPolicy, type LatentShapes, type OnnxPolicyOptions, type TrainingPlan } from './onnxPolicy';
import type { PreferenceBatch, PreferenceModelInfo, PreferencePolicy, PreferenceStats } from './types';
import type { Embeddings, StableDiffusionPipeline } from '../diffusion/pipeline';
import { openVaeEncoder, type VaeEncoder } from '../diffusion/vaeEncoder';
import { unetRoles, unetStatics } from '../diffusion/unetRoles';
import type { ImageRGB } from '../image/rgb';
import type { Model } from '../onnx/ir';
import { diffusionDpoInputShapes, diffusionDpoObjective } from '../train/objective';
import { isLossNode } from '../train/losses';
import { estimateDdpoMemory } from './memory';

// One training-graph run: `pairs` pairs as 2·pairs UNet rows.
interface DpoShapes extends LatentShapes { pairs: number; emb: number[]; tScalar: boolean }

/** Opens the model folder and builds the sampling graph and the Diffusion-DPO training session. */
export async function createDpoPolicy(modelDir: string, c: DdpoConfig, opts: OnnxPolicyOptions = {}): Promise<PreferencePolicy> {
  return new OnnxDpoPolicy(await buildPolicyGraphs(modelDir, c, opts, dpoTraining(c, opts.onLog)), c, opts);
}

function dpoTraining(c: DdpoConfig, onLog: OnnxPolicyOptions['onLog']): TrainingPlan<DpoShapes> {
  return {
    shapes: (pipe, forward) => dpoShapes(pipe, forward, c, onLog),
    options: (s, _pipe, fp16, onEstimate) => {
      const inputShapes = diffusionDpoInputShapes(s.pairs, [s.C, s.h, s.w], s.emb, s.tScalar);
      return {
        lora: { rank: c.lora_rank, alpha: c.lora_alpha, targets: c.lora_target_modules }, seed: c.seed,
        precision: fp16 ? 'fp16' : 'fp32', keepFp32Nodes: isLossNode, objective: diffusionDpoObjective, inputShapes,
        beforeBuild: (fwd, shapes) => onEstimate(estimateDdpoMemory(fwd, shapes, c)),
      };
    },
  };
}

// train_batch_size pairs per run; a UNet with one scalar timestep per call takes one pair (its two rows share it), and
// one exported for a fixed batch takes half of it. The latent size and text length must be the ones the export fixes.
async function dpoShapes(pipe: StableDiffusionPipeline, forward: Model, c: DdpoConfig, onLog: OnnxPolicyOptions['onLog']): Promise<DpoShapes> {
  const roles = unetRoles(forward), st = unetStatics(roles);
  const unet = pipe.folder.unet;
  if (roles.added) throw new Error(`${unet} is an SDXL-class UNet (it takes pooled text embeddings and time ids); Diffusion-DPO trains SD 1.x/2.x-class UNets only, so use "algorithm": "ddpo" for this model`);
  const C = pipe.latentChannels, h = c.latent_size || pipe.defaultLatentSize, w = st.width ?? h;
  if (st.height !== undefined && h !== st.height) throw new Error(`${unet} is exported for ${st.height}x${st.width ?? st.height} latents only, but latent_size is ${h}; set "latent_size": ${st.height} (or 0) in ddpo.json, or re-export the UNet with dynamic height and width`);
  const probe = await pipe.encodePrompts(['']);
  if (st.sequence !== undefined && probe.sequence !== st.sequence) throw new Error(`${unet} takes text embeddings of ${st.sequence} tokens, but the tokenizer and text encoder give ${probe.sequence}; use the text encoder and tokenizer the UNet was exported with`);
  const pairs = st.batch !== undefined ? st.batch / 2 : st.scalarTimestep ? 1 : c.train_batch_size;
  if (!Number.isInteger(pairs) || pairs < 1 || c.train_batch_size % pairs !== 0) {
    throw new Error(`${unet} is exported for a fixed batch of ${st.batch}, but a Diffusion-DPO run takes the two images of each pair, so it needs an even batch that divides train_batch_size (${c.train_batch_size}) twice over; re-export the UNet with a dynamic batch, or set "train_batch_size" in ddpo.json to a multiple of ${Math.max(1, Math.floor((st.batch ?? 2) / 2))}`);
  }
  if (pairs < c.train_batch_size) onLog?.(`${unet} takes ${pairs} pair(s) per graph run (${st.scalarTimestep ? 'one scalar timestep per call' : `a fixed batch of ${st.batch}`}); train_batch_size ${c.train_batch_size} pairs run in chunks, gradients summed`);
  return { C, h, w, sequence: probe.sequence, pairs, emb: [probe.sequence, probe.dim], tScalar: st.scalarTimestep };
}

/** Noisy latents and targets of a batch's rows (its winners, then its losers), computed in float64. */
export interface NoisedRows { noisy: Float32Array; target: Float32Array; timesteps: number[]; prompts: string[] }

/**
 * x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε for both images of each pair (the same t and ε), with the target the model predicts:
 * ε, v = √ᾱ_t·ε − √(1−ᾱ_t)·x₀ (v-prediction), or x₀ ('sample').
 */
export function noisedRows(b: PreferenceBatch, alphasCumprod: ArrayLike<number>, kind: PreferenceModelInfo['predictionType']): NoisedRows {
  const B = b.prompts.length, per = b.noise[0].length;
  const noisy = new Float32Array(2 * B * per), target = new Float32Array(2 * B * per);
  [...b.winners, ...b.losers].forEach((x0, row) => {
    const k = row % B, eps = b.noise[k];
    const a = alphasCumprod[b.timesteps[k]], sa = Math.sqrt(a), sb = Math.sqrt(1 - a);
    for (let i = 0; i < per; i++) {
      noisy[row * per + i] = sa * x0[i] + sb * eps[i];
      target[row * per + i] = kind === 'epsilon' ? eps[i] : kind === 'v_prediction' ? sa * eps[i] - sb * x0[i] : x0[i];
    }
  });
  return { noisy, target, timesteps: [...b.timesteps, ...b.timesteps], prompts: [...b.prompts, ...b.prompts] };
}

class OnnxDpoPolicy extends LoraPolicy<DpoShapes> implements PreferencePolicy {
  readonly model: PreferenceModelInfo;
  private encoder?: Promise<VaeEncoder | undefined>;

  constructor(g: ConstructorParameters<typeof LoraPolicy<DpoShapes>>[0], c: DdpoConfig, private readonly opts: OnnxPolicyOptions) {
    super(g, c);
    const { pipe, shapes } = g;
    this.model = {
      latent: [shapes.C, shapes.h, shapes.w], numTrainTimesteps: pipe.schedule.config.numTrainTimesteps, pairsPerRun: shapes.pairs,
      predictionType: pipe.schedule.config.predictionType, hasEncoder: pipe.folder.vaeEncoder !== undefined,
    };
  }

  async accumulatePreferences(batch: PreferenceBatch, beta: number, lossScale: number): Promise<PreferenceStats> {
    const { pairs, C, h, w, emb, tScalar } = this.g.shapes;
    if (batch.prompts.length !== pairs) throw new Error(`the Diffusion-DPO training graph was built for ${pairs} pairs per run but was given ${batch.prompts.length}`);
    const rows = this.noised(batch);
    const lat = [2 * pairs, C, h, w];
    const r = await this.g.session.step({
      noisy_latents: { dims: lat, data: rows.noisy }, target: { dims: lat, data: rows.target },
      timestep: tScalar ? { dims: [], data: [rows.timesteps[0]] } : { dims: [2 * pairs], data: rows.timesteps },
      cond_embeds: { dims: [2 * pairs, ...emb], data: await this.embeddings(rows.prompts) },
      beta_dpo: { dims: [], data: [beta] },
    });
    this.addGradients(r.grads, lossScale);
    return { loss: r.loss, margins: Array.from(r.metrics.get('margin')!), modelMse: r.metrics.get('model_mse')![0], refMse: r.metrics.get('ref_mse')![0] };
  }

  async predictionErrors(batch: PreferenceBatch, weights: 'current' | 'base'): Promise<Float64Array> {
    const rows = this.noised(batch);
    const n = rows.prompts.length, per = rows.noisy.length / n;
    const lora = this.samplingLoraFeeds(weights === 'base');
    const out = new Float64Array(n);
    // rows at one timestep share a UNet call
    const byT = new Map<number, number[]>();
    rows.timesteps.forEach((t, i) => byT.set(t, [...(byT.get(t) ?? []), i]));
    for (const [t, idx] of byT) {
      const gather = (src: Float32Array, size: number) => { const o = new Float32Array(idx.length * size); idx.forEach((r, k) => o.set(src.subarray(r * size, (r + 1) * size), k * size)); return o; };
      const [sequence, dim] = this.g.shapes.emb;
      const context: Embeddings = { data: await this.embeddings(idx.map((r) => rows.prompts[r])), batch: idx.length, sequence, dim };
      const pred = await this.predictWith(lora, gather(rows.noisy, per), idx.length, this.g.shapes.h, this.g.shapes.w, t, context);
      const target = gather(rows.target, per);
      idx.forEach((r, k) => { let s = 0; for (let i = k * per; i < (k + 1) * per; i++) { const d = pred[i] - target[i]; s += d * d; } out[r] = s / per; });
    }
    return out;
  }

  async encodeImages(images: ImageRGB[]): Promise<Float32Array[]> {
    this.encoder ??= openVaeEncoder(this.g.pipe.folder, this.g.shapes.C, this.opts.providers);
    const enc = await this.encoder;
    if (!enc) throw new Error(`${this.g.pipe.folder.dir} has no vae_encoder/model.onnx to encode the rated images with`);
    return enc.encode(images.map((im) => ({ ...im, channels: 3 })));
  }

  override async release(): Promise<void> {
    await (await this.encoder?.catch(() => undefined))?.release();
    await super.release();
  }

  private noised(b: PreferenceBatch): NoisedRows {
    return noisedRows(b, this.g.pipe.schedule.alphasCumprod, this.model.predictionType);
  }

  private async embeddings(prompts: string[]): Promise<Float32Array> {
    const parts = (await Promise.all(prompts.map((p) => this.embed(p)))).map((e) => e.data);
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }
}
