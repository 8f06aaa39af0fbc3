/** Training objectives as ONNX subgraphs of standard ops: DDPO (CFG + DDIM log-prob + PPO), Diffusion-DPO, Bradley–Terry, and a dot product for vector-Jacobian checks. */
import { GraphBuilder } from '../onnx/builder';
import type { Node } from '../onnx/ir';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** ReduceMean/ReduceSum over `axes`; axes moved from attribute to input in opset 18 (ReduceSum: 13). */
export function reduce(b: GraphBuilder, op: 'ReduceMean' | 'ReduceSum', x: string, axes: number[] | null, keepdims: boolean, opset: number): string {
  const attrs = { keepdims: { type: 'int' as const, value: keepdims ? 1 : 0 } };
  const axesAsInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
  if (axes === null) return b.op(op, [x], attrs);
  if (axesAsInput) return b.op(op, [x, b.constI64(axes)], attrs);
  return b.op(op, [x], { ...attrs, axes: { type: 'ints', value: axes } });
}

/** Value names the DDPO objective reads. `eps` is the UNet output on the batch [uncond; cond]. */
export interface DdpoLossInputs {
  eps: string;
  /** x_t [B, C, H, W]. */
  latents: string;
  /** x_{t-1} the sampler produced [B, C, H, W]. */
  nextLatents: string;
  /** ᾱ_t and ᾱ_prev per sample [B]. */
  alphaProdT: string;
  alphaProdTPrev: string;
  /** Scalars []. */
  eta: string;
  guidanceScale: string;
  /** Sampling-time log-probs [B] and advantages [B]. */
  oldLogProb: string;
  advantages: string;
  /** PPO's clip range ε [] (an input, so a run can train unclipped where the ratio can only be off 1 by rounding). */
  clipRange: string;
}

/** Constants of the PPO objective (DDPO's train.adv_clip_max; the clip range is an input) and of the scheduler's step. */
export interface PpoConfig {
  advClipMax: number;
  /** What the UNet predicts (scheduler_config.json prediction_type); default epsilon. */
  predictionType?: 'epsilon' | 'v_prediction' | 'sample';
  /** x̂₀ clipped to ±this before the step (scheduler clip_sample), as the sampler does; off when absent. */
  clipSampleRange?: number;
}

/** Names of the DDPO subgraph's results. */
export interface DdpoLossOutputs {
  loss: string;
  logProb: string;
  ratio: string;
  approxKl: string;
  clipFrac: string;
  prevMean: string;
  std: string;
}

/** Node-name scope of the DDPO objective (its gradient nodes carry it too). */
export const DDPO_LOSS_SCOPE = 'ddpo_loss';

/** True for the DDPO objective's nodes and their gradients: float16 training keeps them float32 (log-probs of means, exp). */
export function isDdpoLossNode(n: Node): boolean {
  return n.name.includes(DDPO_LOSS_SCOPE);
}

/**
 * Appends DDPO's policy-gradient objective (ddpo-pytorch `train.py` with `ddim_step_with_logprob`):
 * ε = ε_u + g·(ε_c − ε_u) (the guided model output; x̂₀ and ε from it per the prediction type); x̂₀ = (x − √(1−ᾱ_t)·ε)/√ᾱ_t; σ = η·√((1−ᾱ_prev)/(1−ᾱ_t)·(1−ᾱ_t/ᾱ_prev));
 * μ = √ᾱ_prev·x̂₀ + √(1−ᾱ_prev−σ²)·ε; log p = mean_CHW[−(x_prev−μ)²/(2σ²) − log σ − log√(2π)];
 * r = exp(log p − log p_old); loss = mean(max(−A·r, −A·clip(r, 1±ε))) with A clipped to ±adv_clip_max.
 */
export function appendDdpoLoss(b: GraphBuilder, v: DdpoLossInputs, cfg: PpoConfig, opset: number, rank = 4): DdpoLossOutputs {
  return b.within(DDPO_LOSS_SCOPE, () => {
    const one = b.scalar(1);
    const [epsU, epsC] = b.nodeN('Split', [v.eps], opset >= 18 ? { axis: { type: 'int', value: 0 }, num_outputs: { type: 'int', value: 2 } } : { axis: { type: 'int', value: 0 } }, { outputs: 2 });
    const eps = b.op('Add', [epsU, b.op('Mul', [v.guidanceScale, b.op('Sub', [epsC, epsU])])]);
    // per-sample coefficients broadcast over C, H, W
    const bshape = b.constI64([-1, ...Array(rank - 1).fill(1)]);
    const a = b.op('Reshape', [v.alphaProdT, bshape]);
    const ap = b.op('Reshape', [v.alphaProdTPrev, bshape]);
    const oneMinusA = b.op('Sub', [one, a]);
    const oneMinusAp = b.op('Sub', [one, ap]);
    const { x0, eps: epsHat } = predictedOriginal(b, cfg, v.latents, eps, a, oneMinusA);
    const variance = b.op('Mul', [b.op('Div', [oneMinusAp, oneMinusA]), b.op('Sub', [one, b.op('Div', [a, ap])])]);
    const std = b.op('Mul', [v.eta, b.op('Sqrt', [variance])]);
    const std2 = b.op('Mul', [std, std]);
    // σ = 0 (linspace spacing's last step to t = 0) is deterministic: log-prob 0, no gradient; σ = 1 stands in so
    // nothing divides by zero on the way there or back
    const random = b.op('Greater', [std, b.scalar(0)]);
    const stdSafe = b.op('Where', [random, std, one]);
    const dir = b.op('Mul', [b.op('Sqrt', [b.op('Sub', [oneMinusAp, std2])]), epsHat]);
    const mean = b.op('Add', [b.op('Mul', [b.op('Sqrt', [ap]), x0]), dir]);
    const diff = b.op('Sub', [v.nextLatents, mean]);
    const quad = b.op('Div', [b.op('Mul', [diff, diff]), b.op('Mul', [b.scalar(2), b.op('Mul', [stdSafe, stdSafe])])]);
    const lpElem = b.op('Where', [random, b.op('Sub', [b.op('Neg', [quad]), b.op('Add', [b.op('Log', [stdSafe]), b.scalar(HALF_LOG_2PI)])]), b.scalar(0)]);
    const logProb = reduce(b, 'ReduceMean', lpElem, Array.from({ length: rank - 1 }, (_, k) => k + 1), false, opset);
    const delta = b.op('Sub', [logProb, v.oldLogProb]);
    const ratio = b.op('Exp', [delta]);
    const adv = b.op('Clip', [v.advantages, b.scalar(-cfg.advClipMax), b.scalar(cfg.advClipMax)]);
    const negAdv = b.op('Neg', [adv]);
    const unclipped = b.op('Mul', [negAdv, ratio]);
    const clipped = b.op('Mul', [negAdv, b.op('Clip', [ratio, b.op('Sub', [one, v.clipRange]), b.op('Add', [one, v.clipRange])])]);
    const loss = reduce(b, 'ReduceMean', b.op('Max', [unclipped, clipped]), null, false, opset);
    const approxKl = b.op('Mul', [b.scalar(0.5), reduce(b, 'ReduceMean', b.op('Mul', [delta, delta]), null, false, opset)]);
    const outside = b.op('Greater', [b.op('Abs', [b.op('Sub', [ratio, one])]), v.clipRange]);
    const clipFrac = reduce(b, 'ReduceMean', b.op('Cast', [outside], { to: { type: 'int', value: 1 } }), null, false, opset);
    return { loss, logProb, ratio, approxKl, clipFrac, prevMean: mean, std };
  });
}

/** Value names the Diffusion-DPO objective reads: predictions and targets of B pairs as 2B rows, winners first. */
export interface DiffusionDpoLossInputs {
  /** The policy's (LoRA) prediction [2B, C, H, W]: rows 0..B-1 the preferred images, B..2B-1 the rejected ones. */
  pred: string;
  /** The reference (base UNet) prediction of the same rows. */
  refPred: string;
  /** What the model is trained to predict: the noise ε, or v for a v-prediction model [2B, C, H, W]. */
  target: string;
  /** β []. */
  beta: string;
}

/** Names of the Diffusion-DPO subgraph's results. */
export interface DiffusionDpoLossOutputs {
  loss: string;
  /** The DPO margin per pair [B] (its sign is the implicit reward's verdict: > 0 prefers the winner). */
  margin: string;
  /** Fraction of pairs with a positive margin []. */
  accuracy: string;
  /** Mean squared errors of the policy and the reference over all rows [] (the plain diffusion loss, to watch). */
  modelMse: string;
  refMse: string;
}

/** Node-name scope of the Diffusion-DPO objective (its gradient nodes carry it too). */
export const DIFFUSION_DPO_LOSS_SCOPE = 'diffusion_dpo_loss';

/** True for the nodes of either objective and their gradients: float16 training keeps them float32. */
export function isLossNode(n: Node): boolean {
  return isDdpoLossNode(n) || n.name.includes(DIFFUSION_DPO_LOSS_SCOPE);
}

/**
 * Appends Diffusion-DPO's loss (Wallace et al. 2023, as the official training code computes it): per row the mean
 * over C·H·W of (pred − target)², e = mse_θ − mse_ref; margin = −β/2·(e_w − e_l); loss = mean over pairs of
 * −log σ(margin) = softplus(−margin). The reference rows carry no gradient (no path to the LoRA inputs).
 */
export function appendDiffusionDpoLoss(b: GraphBuilder, v: DiffusionDpoLossInputs, opset: number, rank = 4): DiffusionDpoLossOutputs {
  return b.within(DIFFUSION_DPO_LOSS_SCOPE, () => {
    const pixels = Array.from({ length: rank - 1 }, (_, k) => k + 1);
    const mse = (pred: string) => { const d = b.op('Sub', [pred, v.target]); return reduce(b, 'ReduceMean', b.op('Mul', [d, d]), pixels, false, opset); };
    const halves = (x: string) => b.nodeN('Split', [x], opset >= 18 ? { axis: { type: 'int', value: 0 }, num_outputs: { type: 'int', value: 2 } } : { axis: { type: 'int', value: 0 } }, { outputs: 2 });
    const modelRows = mse(v.pred), refRows = mse(v.refPred);
    const [ew, el] = halves(b.op('Sub', [modelRows, refRows]));
    const margin = b.op('Mul', [b.op('Mul', [b.scalar(-0.5), v.beta]), b.op('Sub', [ew, el])]);
    const loss = reduce(b, 'ReduceMean', b.op('Softplus', [b.op('Neg', [margin])]), null, false, opset);
    const won = b.op('Cast', [b.op('Greater', [margin, b.scalar(0)])], { to: { type: 'int', value: 1 } });
    return {
      loss, margin, accuracy: reduce(b, 'ReduceMean', won, null, false, opset),
      modelMse: reduce(b, 'ReduceMean', modelRows, null, false, opset), refMse: reduce(b, 'ReduceMean', refRows, null, false, opset),
    };
  });
}

/**
 * x̂₀ and ε from the guided model output m, as diffusers' DDIM step reads them: ε-prediction x̂₀ = (x − √(1−ᾱ)·m)/√ᾱ;
 * v-prediction x̂₀ = √ᾱ·x − √(1−ᾱ)·m, ε = √ᾱ·m + √(1−ᾱ)·x; sample-prediction x̂₀ = m, ε = (x − √ᾱ·m)/√(1−ᾱ).
 * x̂₀ is clipped where the scheduler clips it (ε stays the model's, use_clipped_model_output false).
 */
function predictedOriginal(b: GraphBuilder, cfg: PpoConfig, x: string, m: string, a: string, oneMinusA: string): { x0: string; eps: string } {
  const sa = b.op('Sqrt', [a]), sb = b.op('Sqrt', [oneMinusA]);
  let x0: string, eps = m;
  switch (cfg.predictionType ?? 'epsilon') {
    case 'epsilon': x0 = b.op('Div', [b.op('Sub', [x, b.op('Mul', [sb, m])]), sa]); break;
    case 'v_prediction':
      x0 = b.op('Sub', [b.op('Mul', [sa, x]), b.op('Mul', [sb, m])]);
      eps = b.op('Add', [b.op('Mul', [sa, m]), b.op('Mul', [sb, x])]);
      break;
    case 'sample': x0 = m; eps = b.op('Div', [b.op('Sub', [x, b.op('Mul', [sa, m])]), sb]); break;
  }
  if (cfg.clipSampleRange !== undefined) x0 = b.op('Clip', [x0, b.scalar(-cfg.clipSampleRange), b.scalar(cfg.clipSampleRange)]);
  return { x0, eps };
}

/**
 * Bradley–Terry loss for a reward head, ties as half-wins: with d = r_left − r_right and y the
 * probability that left wins, −[y·log σ(d) + (1−y)·log σ(−d)] = softplus(−d) + (1−y)·d; averaged over pairs.
 */
export function appendBradleyTerryLoss(b: GraphBuilder, rewardLeft: string, rewardRight: string, leftWins: string, opset: number): { loss: string; accuracy: string } {
  return b.within('bt_loss', () => {
    const d = b.op('Sub', [rewardLeft, rewardRight]);
    const per = b.op('Add', [b.op('Softplus', [b.op('Neg', [d])]), b.op('Mul', [b.op('Sub', [b.scalar(1), leftWins]), d])]);
    const loss = reduce(b, 'ReduceMean', per, null, false, opset);
    // a decided pair counts as right when the sign of d agrees; a tie counts as half right
    const agree = b.op('Cast', [b.op('Greater', [d, b.scalar(0)])], { to: { type: 'int', value: 1 } });
    const hit = b.op('Sub', [b.scalar(1), b.op('Abs', [b.op('Sub', [agree, leftWins])])]);
    return { loss, accuracy: reduce(b, 'ReduceMean', hit, null, false, opset) };
  });
}

/** L = sum(output · weights): a vector-Jacobian product as a scalar loss. */
export function appendDotLoss(b: GraphBuilder, output: string, weights: string, opset: number): string {
  return b.within('dot_loss', () => reduce(b, 'ReduceSum', b.op('Mul', [output, weights]), null, false, opset));
}
