/**
 * A test double of the DDPO policy with exact gradients: the "UNet" is ε = s_c·x + b_c + e(prompt), one scale
 * and bias per latent channel c, sampled and scored with the real DDIM step, trained with a hand-derived PPO gradient, AdamW and
 * grad-norm clipping. Small and deterministic, so the loop's behaviour can be checked in milliseconds.
 */
import { ddimCoefficients, ddimStepWithLogProb, ddimTimesteps, makeDdimSchedule, parseDdimConfig } from '../../../src/core/diffusion/ddim';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import type { ImageRGB } from '../../../src/core/image/rgb';
import type { Policy, PolicySampleRequest, PolicySamples, PolicyScoreRequest, PolicyState, PolicyTrainRequest, PolicyTrainStats } from '../../../src/core/ddpo/types';
import type { LoraWeights } from '../../../src/core/train/loraFile';

const SCHEDULE = makeDdimSchedule(parseDdimConfig({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000, set_alpha_to_one: false, steps_offset: 1, clip_sample: false }));

/** Optimizer settings of the toy (TRL's names). */
export interface ToyOptim { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }

/** The toy policy; `size` is the image side, the latent is 3 x size x size. */
export class ToyPolicy implements Policy {
  readonly D: number;
  private p: Float64Array; // [s_0..s_2, b_0..b_2]
  private g: Float64Array;
  private m: Float64Array;
  private v: Float64Array;
  private t = 0;
  /** Test hook: makes the next update see a NaN gradient. */
  poisonNextUpdate = false;

  constructor(readonly size: number, readonly optim: ToyOptim, readonly decodeDivisor = 32) {
    this.D = 3 * size * size;
    this.p = new Float64Array(6);
    this.g = new Float64Array(6);
    this.m = new Float64Array(6);
    this.v = new Float64Array(6);
  }

  async sample(req: PolicySampleRequest): Promise<PolicySamples> {
    const { D } = this;
    const timesteps = ddimTimesteps(SCHEDULE.config, req.numSteps);
    const out: PolicySamples = { images: [], timesteps, latents: [], logProbs: [] };
    for (const [k, prompt] of req.prompts.entries()) {
      const rng = new GaussianRng(req.seed + k);
      const traj = new Float32Array((timesteps.length + 1) * D);
      rng.fill(traj.subarray(0, D));
      const lps: number[] = [];
      for (const [i, t] of timesteps.entries()) {
        const x = traj.subarray(i * D, (i + 1) * D);
        const step = ddimStepWithLogProb({
          sample: x, modelOutput: this.eps(x, prompt, req.negativePrompt, req.guidanceScale, true), batch: 1,
          coefficients: ddimCoefficients(SCHEDULE, t, req.numSteps, req.eta), noise: rng.fill(new Float32Array(D)),
        });
        traj.set(step.prevSample, (i + 1) * D);
        lps.push(step.logProb[0]);
      }
      out.latents.push(traj);
      out.logProbs.push(lps);
      out.images.push(this.decode(traj.subarray(timesteps.length * D)));
    }
    return out;
  }

  async accumulate(req: PolicyTrainRequest): Promise<PolicyTrainStats> {
    const { D } = this;
    const B = req.prompts.length;
    let loss = 0, kl = 0, clipped = 0;
    const logProbs: number[] = [];
    for (let k = 0; k < B; k++) {
      const x = req.latents[k];
      const c = ddimCoefficients(SCHEDULE, req.timesteps[k], req.numSteps, req.eta);
      const step = ddimStepWithLogProb({ sample: x, modelOutput: this.eps(x, req.prompts[k], req.negativePrompt, req.guidanceScale, req.cfg), batch: 1, coefficients: c, prevSample: req.nextLatents[k] });
      const lp = step.logProb[0];
      logProbs.push(lp);
      const ratio = Math.exp(lp - req.oldLogProbs[k]);
      const A = req.advantages[k];
      const unc = -A * ratio;
      const clp = -A * Math.min(1 + req.clipRange, Math.max(1 - req.clipRange, ratio));
      loss += Math.max(unc, clp) / B;
      kl += (0.5 * (lp - req.oldLogProbs[k]) ** 2) / B;
      clipped += (Math.abs(ratio - 1) > req.clipRange ? 1 : 0) / B;
      // d loss_k / d logp_k: -A·ratio where the unclipped term is the max, else 0.
      const dl = unc >= clp ? (-A * ratio * req.lossScale) / B : 0;
      if (dl === 0) continue;
      const sa = Math.sqrt(c.alphaProdT), sb = Math.sqrt(1 - c.alphaProdT), sPrev = Math.sqrt(c.alphaProdTPrev);
      const K = Math.sqrt(Math.max(0, 1 - c.alphaProdTPrev - c.stdDevT ** 2)) - (sPrev * sb) / sa; // dμ/dε
      const scale = 1 / (c.stdDevT ** 2 * D);
      for (let i = 0; i < D; i++) {
        const gmu = (req.nextLatents[k][i] - step.prevSampleMean[i]) * scale;
        const ch = Math.floor((i * 3) / D);
        this.g[ch] += dl * K * x[i] * gmu;
        this.g[3 + ch] += dl * K * gmu;
      }
    }
    return { loss, approxKl: kl, clipfrac: clipped, logProbs };
  }

  /** The log-probabilities `accumulate` computes, exactly. */
  async score(req: PolicyScoreRequest): Promise<number[]> {
    return req.prompts.map((prompt, k) => {
      const x = req.latents[k];
      const c = ddimCoefficients(SCHEDULE, req.timesteps[k], req.numSteps, req.eta);
      return ddimStepWithLogProb({ sample: x, modelOutput: this.eps(x, prompt, req.negativePrompt, req.guidanceScale, req.cfg), batch: 1, coefficients: c, prevSample: req.nextLatents[k] }).logProb[0];
    });
  }

  async update(maxGradNorm: number): Promise<{ gradNorm: number; applied: boolean }> {
    if (this.poisonNextUpdate) { this.poisonNextUpdate = false; this.g[0] = NaN; }
    let sq = 0;
    for (const v of this.g) sq += v * v;
    const norm = Math.sqrt(sq);
    if (!Number.isFinite(norm)) { this.g.fill(0); return { gradNorm: norm, applied: false }; }
    const clip = Math.min(1, maxGradNorm / (norm + 1e-6));
    const { lr, beta1, beta2, eps, weightDecay } = this.optim;
    this.t++;
    for (let i = 0; i < this.p.length; i++) {
      const gi = this.g[i] * clip;
      this.p[i] *= 1 - lr * weightDecay;
      this.m[i] = beta1 * this.m[i] + (1 - beta1) * gi;
      this.v[i] = beta2 * this.v[i] + (1 - beta2) * gi * gi;
      const mh = this.m[i] / (1 - beta1 ** this.t), vh = this.v[i] / (1 - beta2 ** this.t);
      this.p[i] -= (lr * mh) / (Math.sqrt(vh) + eps);
    }
    this.g.fill(0);
    return { gradNorm: norm, applied: true };
  }

  async saveState(): Promise<PolicyState> {
    const t = (a: Float64Array) => ({ dtype: 'F64' as const, shape: [a.length], data: Float64Array.from(a) });
    return { tensors: new Map([['p', t(this.p)], ['m', t(this.m)], ['v', t(this.v)]]), meta: { t: this.t } };
  }

  async loadState(s: PolicyState): Promise<void> {
    this.p = Float64Array.from(s.tensors.get('p')!.data as Float64Array);
    this.m = Float64Array.from(s.tensors.get('m')!.data as Float64Array);
    this.v = Float64Array.from(s.tensors.get('v')!.data as Float64Array);
    this.t = s.meta.t as number;
    this.g.fill(0);
  }

  async lora(): Promise<LoraWeights> {
    const mod = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q';
    return { rank: 1, alpha: 1, modules: new Map([[mod, { inFeatures: 3, outFeatures: 3, A: Float32Array.from(this.p.subarray(0, 3)), B: Float32Array.from(this.p.subarray(3)) }]]) };
  }

  /** Parameters [s_0..s_2, b_0..b_2] and the accumulated gradient (for gradient checks). */
  get params(): Float64Array { return this.p; }
  get grads(): Float64Array { return this.g; }

  /** Sum of |parameters|, to see whether training moved them. */
  paramNorm(): number {
    return this.p.reduce((a, v) => a + Math.abs(v), 0);
  }

  private eps(x: Float32Array, prompt: string, negative: string, g: number, cfg: boolean): Float32Array {
    const { D } = this;
    const ec = promptOffset(prompt, D), eu = promptOffset(negative, D);
    const out = new Float32Array(D);
    for (let i = 0; i < D; i++) {
      const ch = Math.floor((i * 3) / D);
      const base = this.p[ch] * x[i] + this.p[3 + ch];
      out[i] = cfg ? base + eu[i] + g * (ec[i] - eu[i]) : base + ec[i];
    }
    return out;
  }

  private decode(x: Float32Array): ImageRGB {
    const n = this.size * this.size;
    const data = new Uint8Array(n * 3);
    for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) data[i * 3 + c] = Math.round(Math.min(1, Math.max(0, x[c * n + i] / this.decodeDivisor + 0.5)) * 255);
    return { width: this.size, height: this.size, data };
  }
}

const offsets = new Map<string, Float32Array>();
function promptOffset(prompt: string, D: number): Float32Array {
  const key = `${D}:${prompt}`;
  let o = offsets.get(key);
  if (!o) {
    let h = 7;
    for (const ch of prompt) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
    o = new GaussianRng(h).fill(new Float32Array(D)).map((v) => 0.05 * v);
    offsets.set(key, o);
  }
  return o;
}
