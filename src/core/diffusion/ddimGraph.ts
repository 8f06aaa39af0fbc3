/** The DDIM step with log-probability and the CFG combine as a small ONNX graph, so a sampling loop can stay on the device. */
import { A, GraphBuilder } from '../onnx/builder';
import { DataType, Model, emptyGraph, makeModel } from '../onnx/ir';
import { DdimCoefficients, DdimConfig } from './ddim';

/** Shape and options the step graph is built for (static shapes: one graph per batch and latent size). */
export interface DdimGraphSpec {
  batch: number;
  channels: number;
  height: number;
  width: number;
  /** The model output holds [uncond; cond] halves to combine with the guidance scale. */
  cfg: boolean;
  predictionType?: DdimConfig['predictionType'];
  /** Clip x̂₀ to ±range (scheduler `clip_sample`); off when absent. */
  clipSampleRange?: number;
  /** Element type of `model_output` and `next_model_input` (the UNet's own I/O type); float32 by default. */
  unetType?: 'float32' | 'float16';
}

/** Order of the values in the graph's `coefficients` input; see {@link ddimGraphCoefficients}. */
export const DDIM_GRAPH_COEFFICIENTS = ['sqrt_alpha_t', 'sqrt_one_minus_alpha_t', 'sqrt_alpha_prev', 'dir_coef', 'std_dev', 'log_norm', 'guidance', 'inv_two_var'] as const;

/** The `coefficients` feed for one step: the scalars of {@link ddimStepWithLogProb}, computed in float64 on the host. */
export function ddimGraphCoefficients(c: DdimCoefficients, guidance: number): Float32Array {
  const std = c.stdDevT;
  return Float32Array.from([
    Math.sqrt(c.alphaProdT), Math.sqrt(1 - c.alphaProdT), Math.sqrt(c.alphaProdTPrev),
    Math.sqrt(Math.max(0, 1 - c.alphaProdTPrev - std * std)), std,
    Math.log(std) + 0.5 * Math.log(2 * Math.PI), guidance, std === 0 ? 0 : 1 / (2 * std * std),
  ]);
}

/**
 * Inputs `sample [B,C,H,W]`, `model_output [2B or B,C,H,W]`, `noise [B,C,H,W]`, `coefficients [8]`;
 * outputs `prev_sample`, `log_prob [B]` (mean over C·H·W of log N(prev; mean, σ²)) and, with CFG or an fp16
 * UNet, `next_model_input` (`[prev; prev]` in the UNet's type), the next UNet batch. Same math as ddimStepWithLogProb.
 */
export function buildDdimStepGraph(spec: DdimGraphSpec): Model {
  const kind = spec.predictionType ?? 'epsilon';
  if (kind === 'sample') throw new Error("the DDIM step graph supports prediction_type 'epsilon' and 'v_prediction'; use the host sampler for 'sample'");
  const g = emptyGraph('ddim_step');
  const b = new GraphBuilder(g);
  const { batch: B, channels: C, height: H, width: W } = spec;
  const lat = [B, C, H, W];
  const x = b.input('sample', DataType.FLOAT, lat);
  const half = spec.unetType === 'float16';
  const unetDims = [spec.cfg ? 2 * B : B, C, H, W];
  const rawOut = b.input('model_output', half ? DataType.FLOAT16 : DataType.FLOAT, unetDims);
  const out = half ? b.op('Cast', [rawOut], { to: A.i(DataType.FLOAT) }) : rawOut;
  const noise = b.input('noise', DataType.FLOAT, lat);
  const coef = b.input('coefficients', DataType.FLOAT, [DDIM_GRAPH_COEFFICIENTS.length]);
  const k = (name: (typeof DDIM_GRAPH_COEFFICIENTS)[number]) => b.op('Gather', [coef, b.constI64([DDIM_GRAPH_COEFFICIENTS.indexOf(name)], [])], { axis: A.i(0) });
  const [sa, sb, sPrev, dir, std, logNorm, guidance, invTwoVar] = DDIM_GRAPH_COEFFICIENTS.map(k);

  let m = out;
  if (spec.cfg) {
    // guided = u + g·(c - u), halves [uncond; cond] along the batch
    const [u, c] = b.nodeN('Split', [out, b.constI64([B, B])], { axis: A.i(0) }, { outputs: 2 });
    m = b.op('Add', [u, b.op('Mul', [guidance, b.op('Sub', [c, u])])]);
  }
  let x0: string;
  let eps: string;
  if (kind === 'epsilon') {
    x0 = b.op('Div', [b.op('Sub', [x, b.op('Mul', [sb, m])]), sa]);
    eps = m;
  } else {
    x0 = b.op('Sub', [b.op('Mul', [sa, x]), b.op('Mul', [sb, m])]);
    eps = b.op('Add', [b.op('Mul', [sa, m]), b.op('Mul', [sb, x])]);
  }
  if (spec.clipSampleRange !== undefined) x0 = b.op('Clip', [x0, b.scalar(-spec.clipSampleRange), b.scalar(spec.clipSampleRange)]);
  const mean = b.op('Add', [b.op('Mul', [sPrev, x0]), b.op('Mul', [dir, eps])]);
  const prev = b.op('Add', [mean, b.op('Mul', [std, noise])]);
  // log p = mean_CHW[-(prev-mean)²/(2σ²)] - log σ - log √(2π)
  const d = b.op('Sub', [prev, mean]);
  const sq = b.op('Mul', [b.op('Mul', [d, d]), invTwoVar]);
  const logProb = b.op('Sub', [b.op('Neg', [b.op('ReduceMean', [sq], { axes: A.ints([1, 2, 3]), keepdims: A.i(0) })]), logNorm]);
  b.output(prev, 'prev_sample', DataType.FLOAT, lat);
  b.output(logProb, 'log_prob', DataType.FLOAT, [B]);
  if (spec.cfg || half) {
    const next = spec.cfg ? b.op('Concat', [prev, prev], { axis: A.i(0) }) : prev;
    b.output(half ? b.op('Cast', [next], { to: A.i(DataType.FLOAT16) }) : next, 'next_model_input', half ? DataType.FLOAT16 : DataType.FLOAT, unetDims);
  }
  return makeModel(g, 17);
}
