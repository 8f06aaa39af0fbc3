/**
 * A test double of the Diffusion-DPO policy with exact gradients: the "UNet" predicts ε = θ⊙x_t + φ per latent value
 * (θ, φ the "LoRA", zero at the start, so the reference predicts 0), its loss and gradient taken from the float64
 * oracle of the formula (../train/dpoOracle.ts), stepped by the project's AdamW with grad-norm clipping.
 */
import { noisedRows } from '../../../src/core/ddpo/dpoPolicy';
import type { PreferenceData, PreferencePair } from '../../../src/core/ddpo/dpoPairs';
import type { PolicyState, PreferenceBatch, PreferenceModelInfo, PreferencePolicy, PreferenceStats } from '../../../src/core/ddpo/types';
import { makeDdimSchedule, parseDdimConfig } from '../../../src/core/diffusion/ddim';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import type { SafeTensor } from '../../../src/core/safetensors';
import { AdamW, clipGradNorm } from '../../../src/core/train/adamw';
import type { LoraWeights } from '../../../src/core/train/loraFile';
import { diffusionDpoOracle } from '../train/dpoOracle';

const SCHEDULE = makeDdimSchedule(parseDdimConfig({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000, set_alpha_to_one: false, steps_offset: 1, clip_sample: false }));

/** Values per latent of the toy. */
export const TOY_LATENT = [1, 2, 2];
const D = 4;

/** The toy; every call to the training step and to the error scorer is recorded for the tests to check. */
export class DpoToyPolicy implements PreferencePolicy {
  readonly model: PreferenceModelInfo = { latent: TOY_LATENT, numTrainTimesteps: 1000, pairsPerRun: 2, predictionType: 'epsilon', hasEncoder: false };
  readonly params = new Map([['theta', new Float32Array(D)], ['phi', new Float32Array(D)]]);
  private grads = new Map([['theta', new Float32Array(D)], ['phi', new Float32Array(D)]]);
  private opt: AdamW;
  /** Batches the training step saw. */
  readonly trained: PreferenceBatch[] = [];
  /** Per scoring call: the batch, which weights, and the errors returned. */
  readonly scored: { batch: PreferenceBatch; weights: 'current' | 'base'; errors: Float64Array }[] = [];
  /** Test hook: throws on this training step (counting from 1), as a killed process would stop. */
  failAtStep = 0;

  constructor(private readonly lr: number) {
    this.opt = new AdamW({ lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  }

  async accumulatePreferences(batch: PreferenceBatch, beta: number, lossScale: number): Promise<PreferenceStats> {
    if (this.failAtStep && this.trained.length + 1 === this.failAtStep) throw new Error('simulated kill');
    this.trained.push(batch);
    const rows = noisedRows(batch, SCHEDULE.alphasCumprod, 'epsilon');
    const pred = this.predict(rows.noisy, 'current');
    const o = diffusionDpoOracle(pred, this.predict(rows.noisy, 'base'), rows.target, beta, batch.prompts.length);
    const [gt, gp] = [this.grads.get('theta')!, this.grads.get('phi')!];
    for (let i = 0; i < pred.length; i++) { gt[i % D] += lossScale * o.gradPred[i] * rows.noisy[i]; gp[i % D] += lossScale * o.gradPred[i]; }
    return { loss: o.loss, margins: o.margins, modelMse: o.modelMse, refMse: o.refMse };
  }

  async predictionErrors(batch: PreferenceBatch, weights: 'current' | 'base'): Promise<Float64Array> {
    const rows = noisedRows(batch, SCHEDULE.alphasCumprod, 'epsilon');
    const pred = this.predict(rows.noisy, weights);
    const errors = Float64Array.from({ length: rows.prompts.length }, (_, r) => {
      let s = 0;
      for (let i = r * D; i < (r + 1) * D; i++) s += (pred[i] - rows.target[i]) ** 2;
      return s / D;
    });
    this.scored.push({ batch, weights, errors });
    return errors;
  }

  async encodeImages(): Promise<Float32Array[]> { throw new Error('the toy has no VAE encoder'); }
  async sample(): Promise<never> { throw new Error('the toy renders no images (set eval_seeds to [])'); }

  async update(maxGradNorm: number) {
    const gradNorm = clipGradNorm(this.grads.values(), maxGradNorm);
    if (Number.isFinite(gradNorm)) this.opt.update(this.params, this.grads);
    for (const g of this.grads.values()) g.fill(0);
    return { gradNorm, applied: Number.isFinite(gradNorm) };
  }

  async saveState(): Promise<PolicyState> {
    const tensors = new Map<string, SafeTensor>([...this.params].map(([k, p]) => [`lora.${k}`, { dtype: 'F32' as const, shape: [D], data: Float32Array.from(p) }]));
    const o = this.opt.state();
    for (const [k, t] of o.tensors) tensors.set(`opt.${k}`, t);
    return { tensors, meta: { optimizer: { step: o.step } } };
  }

  async loadState(state: PolicyState): Promise<void> {
    for (const [k, p] of this.params) p.set(state.tensors.get(`lora.${k}`)!.data as Float32Array);
    const optT = new Map([...state.tensors].filter(([k]) => k.startsWith('opt.')).map(([k, t]) => [k.slice(4), t]));
    this.opt = AdamW.fromState({ step: (state.meta.optimizer as { step: number }).step, tensors: optT }, { lr: this.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, 'toy checkpoint');
  }

  async lora(): Promise<LoraWeights> {
    const mod = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q';
    return { rank: 1, alpha: 1, modules: new Map([[mod, { inFeatures: D, outFeatures: D, A: Float32Array.from(this.params.get('theta')!), B: Float32Array.from(this.params.get('phi')!) }]]) };
  }

  private predict(noisy: Float32Array, weights: 'current' | 'base'): Float64Array {
    const [t, p] = [this.params.get('theta')!, this.params.get('phi')!];
    return Float64Array.from(noisy, (x, i) => (weights === 'base' ? 0 : t[i % D] * x + p[i % D]));
  }
}

/**
 * Pairs the toy can learn: preferred latents near +1, rejected ones near −1 (a prediction with φ < 0 fits the
 * preferred images' noise better); one in five held out.
 */
export function toyPreferenceData(n: number, seed = 1): PreferenceData {
  const rng = new GaussianRng(seed);
  const latent = (sign: number) => Float32Array.from(rng.fill(new Float32Array(D)), (g) => sign + 0.3 * g);
  const pairs: PreferencePair[] = Array.from({ length: n }, (_, k) => ({ pairId: `p${k}`, prompt: k % 2 ? 'a cat' : 'a dog', winner: latent(1), loser: latent(-1) }));
  return {
    train: pairs.filter((_, k) => k % 5 !== 0), heldOut: pairs.filter((_, k) => k % 5 === 0), latents: 'stored',
    counts: { ratings: n + 3, ties: 2, skips: 1, withoutLatents: 0 }, problems: [],
  };
}
