/** The parts of diffusers' `scheduler_config.json` the DDIM sampler reads. */
export interface DdimConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: 'scaled_linear' | 'linear';
  setAlphaToOne: boolean;
  stepsOffset: number;
  predictionType: 'epsilon' | 'v_prediction' | 'sample';
  timestepSpacing: 'leading' | 'trailing' | 'linspace';
  clipSample: boolean;
  clipSampleRange: number;
}

/** A DDIM schedule: cumulative alphas of the training process plus its config. */
export interface DdimSchedule {
  config: DdimConfig;
  /** alphā_t for t = 0..numTrainTimesteps-1 (float32 arithmetic, as torch computes it). */
  alphasCumprod: Float64Array;
  /** alphā used for the step past t = 0. */
  finalAlphaCumprod: number;
}

/** Reads a diffusers scheduler config object, with diffusers' defaults; rejects what DDIM here cannot do. */
export function parseDdimConfig(raw: Record<string, unknown>, source = 'scheduler_config.json'): DdimConfig {
  const get = <T>(k: string, d: T): T => (raw[k] === undefined || raw[k] === null ? d : (raw[k] as T));
  const betaSchedule = get<string>('beta_schedule', 'linear');
  if (betaSchedule !== 'scaled_linear' && betaSchedule !== 'linear') {
    throw new Error(`${source}: beta_schedule '${betaSchedule}' is not supported (use 'scaled_linear' or 'linear')`);
  }
  if (raw.trained_betas) throw new Error(`${source}: trained_betas is not supported; use a beta_schedule instead`);
  const predictionType = get<string>('prediction_type', 'epsilon');
  if (!['epsilon', 'v_prediction', 'sample'].includes(predictionType)) throw new Error(`${source}: prediction_type '${predictionType}' is not supported`);
  const timestepSpacing = get<string>('timestep_spacing', 'leading');
  if (!['leading', 'trailing', 'linspace'].includes(timestepSpacing)) throw new Error(`${source}: timestep_spacing '${timestepSpacing}' is not supported`);
  if (get('thresholding', false)) throw new Error(`${source}: thresholding (dynamic) is not supported; set it to false`);
  return {
    numTrainTimesteps: get('num_train_timesteps', 1000),
    betaStart: get('beta_start', 0.0001),
    betaEnd: get('beta_end', 0.02),
    betaSchedule,
    setAlphaToOne: get('set_alpha_to_one', true),
    stepsOffset: get('steps_offset', 0),
    predictionType: predictionType as DdimConfig['predictionType'],
    timestepSpacing: timestepSpacing as DdimConfig['timestepSpacing'],
    clipSample: get('clip_sample', true),
    clipSampleRange: get('clip_sample_range', 1),
  };
}

/** Builds the cumulative alphas the way diffusers' DDIMScheduler does (float32 linspace, squared, cumprod). */
export function makeDdimSchedule(config: DdimConfig): DdimSchedule {
  const n = config.numTrainTimesteps;
  const f = Math.fround;
  const alphasCumprod = new Float64Array(n);
  const lo = config.betaSchedule === 'scaled_linear' ? Math.sqrt(config.betaStart) : config.betaStart;
  const hi = config.betaSchedule === 'scaled_linear' ? Math.sqrt(config.betaEnd) : config.betaEnd;
  let prod = 1;
  for (let i = 0; i < n; i++) {
    const x = f(n === 1 ? lo : lo + ((hi - lo) * i) / (n - 1));
    const beta = config.betaSchedule === 'scaled_linear' ? f(x * x) : x;
    prod = f(prod * f(1 - beta));
    alphasCumprod[i] = prod;
  }
  return { config, alphasCumprod, finalAlphaCumprod: config.setAlphaToOne ? 1 : alphasCumprod[0] };
}

/** Denoising timesteps for `steps` inference steps, high to low (diffusers DDIM `set_timesteps`). */
export function ddimTimesteps(config: DdimConfig, steps: number): number[] {
  const n = config.numTrainTimesteps;
  if (!Number.isInteger(steps) || steps < 1 || steps > n) throw new Error(`steps must be an integer in 1..${n}, got ${steps}`);
  const out: number[] = [];
  if (config.timestepSpacing === 'leading') {
    const ratio = Math.floor(n / steps);
    for (let i = steps - 1; i >= 0; i--) out.push(Math.round(i * ratio) + config.stepsOffset);
  } else if (config.timestepSpacing === 'trailing') {
    const ratio = n / steps;
    for (let i = 0; i < steps; i++) out.push(roundHalfEven(n - i * ratio) - 1);
  } else {
    // as numpy.linspace computes it: i times the step, not i·(n−1) divided afterwards
    const step = steps === 1 ? 0 : (n - 1) / (steps - 1);
    for (let i = steps - 1; i >= 0; i--) out.push(roundHalfEven(i === steps - 1 ? n - 1 : i * step));
  }
  return out;
}

// numpy's round, which diffusers' timesteps go through: a half goes to the even neighbour (832.5 → 832, 811.5 → 812),
// where Math.round would always go up and shift the timestep, and so the image, from the one diffusers samples
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/** Scalars of one DDIM transition t -> prev; what an ONNX mirror of the step needs as constants. */
export interface DdimCoefficients {
  alphaProdT: number;
  alphaProdTPrev: number;
  /** σ_t² / eta² = (1-ᾱ_prev)/(1-ᾱ_t) · (1-ᾱ_t/ᾱ_prev). */
  variance: number;
  /** eta · sqrt(variance). */
  stdDevT: number;
}

/** Coefficients of the transition from `timestep` to `timestep - numTrain/steps` (diffusers' prev_timestep rule). */
export function ddimCoefficients(schedule: DdimSchedule, timestep: number, steps: number, eta: number): DdimCoefficients {
  const prev = timestep - Math.floor(schedule.config.numTrainTimesteps / steps);
  const alphaProdT = schedule.alphasCumprod[timestep];
  if (alphaProdT === undefined) throw new Error(`timestep ${timestep} is outside the schedule (0..${schedule.config.numTrainTimesteps - 1})`);
  const alphaProdTPrev = prev >= 0 ? schedule.alphasCumprod[prev] : schedule.finalAlphaCumprod;
  const variance = ((1 - alphaProdTPrev) / (1 - alphaProdT)) * (1 - alphaProdT / alphaProdTPrev);
  return { alphaProdT, alphaProdTPrev, variance, stdDevT: eta * Math.sqrt(variance) };
}

/** Inputs of {@link ddimStepWithLogProb}; arrays are [batch, ...] flattened, all the same length. */
export interface DdimStepInput {
  sample: Float32Array;
  /** UNet output after guidance (ε, v or x₀ per the prediction type). */
  modelOutput: Float32Array;
  batch: number;
  coefficients: DdimCoefficients;
  predictionType?: DdimConfig['predictionType'];
  /** Clip predicted x₀ to ±range (config `clip_sample`); off when absent. */
  clipSampleRange?: number;
  /** Standard normal noise; prevSample = mean + std·noise. Ignored when prevSample is given. */
  noise?: Float32Array;
  /** A known next latent, to score it (as DDPO does when recomputing log-probs). */
  prevSample?: Float32Array;
}

/** Result of one DDIM step. */
export interface DdimStepOutput {
  prevSample: Float32Array;
  prevSampleMean: Float32Array;
  stdDevT: number;
  /** Per batch item: mean over C·H·W of log N(prevSample; mean, std²). NaN when std is 0 (eta 0 is deterministic). */
  logProb: Float64Array;
  predOriginalSample: Float32Array;
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * One DDIM step that also scores the transition (DDPO's `ddim_step_with_logprob`):
 * x̂₀ = (x - √(1-ᾱ_t)·ε)/√ᾱ_t; mean = √ᾱ_prev·x̂₀ + √(1-ᾱ_prev-σ²)·ε; x_prev = mean + σ·z;
 * log p = mean_CHW[ -(x_prev-mean)²/(2σ²) - log σ - log √(2π) ].
 */
export function ddimStepWithLogProb(input: DdimStepInput): DdimStepOutput {
  const { sample, modelOutput, batch, coefficients: c } = input;
  const n = sample.length;
  if (modelOutput.length !== n) throw new Error(`ddimStepWithLogProb: modelOutput has ${modelOutput.length} values, sample has ${n}`);
  if (n % batch !== 0) throw new Error(`ddimStepWithLogProb: ${n} values do not split into batch ${batch}`);
  const given = input.prevSample;
  if (!given && !input.noise && c.stdDevT !== 0) throw new Error('ddimStepWithLogProb: pass noise or prevSample when eta > 0');
  const kind = input.predictionType ?? 'epsilon';
  const sa = Math.sqrt(c.alphaProdT);
  const sb = Math.sqrt(1 - c.alphaProdT);
  const std = c.stdDevT;
  const dirCoef = Math.sqrt(Math.max(0, 1 - c.alphaProdTPrev - std * std));
  const sPrev = Math.sqrt(c.alphaProdTPrev);
  const clip = input.clipSampleRange;
  const prevSample = new Float32Array(n);
  const prevSampleMean = new Float32Array(n);
  const predOriginalSample = new Float32Array(n);
  const logProb = new Float64Array(batch);
  const per = n / batch;
  const logNorm = Math.log(std) + HALF_LOG_2PI;
  for (let b = 0; b < batch; b++) {
    let acc = 0;
    for (let i = b * per; i < (b + 1) * per; i++) {
      const x = sample[i];
      const m = modelOutput[i];
      let x0: number;
      let eps: number;
      if (kind === 'epsilon') { x0 = (x - sb * m) / sa; eps = m; }
      else if (kind === 'v_prediction') { x0 = sa * x - sb * m; eps = sa * m + sb * x; }
      else { x0 = m; eps = (x - sa * m) / sb; }
      // diffusers clips x̂₀ only; ε stays the model's (use_clipped_model_output defaults to false).
      if (clip !== undefined) x0 = Math.min(clip, Math.max(-clip, x0));
      const mean = Math.fround(sPrev * x0 + dirCoef * eps);
      const next = given ? given[i] : Math.fround(std === 0 ? mean : mean + std * input.noise![i]);
      predOriginalSample[i] = x0;
      prevSampleMean[i] = mean;
      prevSample[i] = next;
      const d = next - mean;
      acc += -(d * d) / (2 * std * std) - logNorm;
    }
    logProb[b] = std === 0 ? NaN : acc / per;
  }
  return { prevSample, prevSampleMean, stdDevT: std, logProb, predOriginalSample };
}
