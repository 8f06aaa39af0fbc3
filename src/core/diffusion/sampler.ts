/** DDIM sampling with classifier-free guidance: the host engine, and the entry that hands 'graph' requests to the graph engine. */
import { StableDiffusionPipeline } from './pipeline';
import { ddimCoefficients, ddimStepWithLogProb } from './ddim';
import { prepareSampling, type SampleRequest, type SampleResult } from './sampleRequest';
import { sampleDdimGraph } from './sampleGraph';

/** Samples with DDIM + classifier-free guidance, recording latents and log-probs of every transition. */
export async function sampleDdim(pipe: StableDiffusionPipeline, req: SampleRequest): Promise<SampleResult> {
  if (req.engine === 'graph') return sampleDdimGraph(pipe, req);
  const { K, C, h, w, per, timesteps, seeds, rngs, cond, uncond, useCfg, context, draw } = await prepareSampling(pipe, req);
  const cfg = pipe.schedule.config;
  // DDIM's initial noise sigma is 1, so the initial latents are plain standard normals.
  const trajectory: Float32Array[] = [draw(req.latents0, 'latents0')];
  const logProbs: Float64Array[] = [];
  const eps: Float32Array[] = [];
  const unetIn = useCfg ? new Float32Array(2 * K * per) : undefined;
  const guided = new Float32Array(K * per);

  for (let i = 0; i < timesteps.length; i++) {
    req.signal?.throwIfAborted();
    const t = timesteps[i];
    const x = trajectory[i];
    if (unetIn) { unetIn.set(x, 0); unetIn.set(x, K * per); }
    const out = await pipe.predict(unetIn ?? x, useCfg ? 2 * K : K, h, w, t, context);
    if (useCfg) {
      // eps = eps_uncond + g * (eps_cond - eps_uncond)
      for (let j = 0; j < K * per; j++) guided[j] = out[j] + req.guidance * (out[K * per + j] - out[j]);
    } else guided.set(out);
    const coefficients = ddimCoefficients(pipe.schedule, t, req.steps, req.eta);
    const noise = coefficients.stdDevT === 0 ? undefined : draw(req.noise?.[i], `noise[${i}]`);
    const step = ddimStepWithLogProb({
      sample: x, modelOutput: guided, batch: K, coefficients, noise,
      predictionType: cfg.predictionType, clipSampleRange: cfg.clipSample ? cfg.clipSampleRange : undefined,
    });
    trajectory.push(step.prevSample);
    logProbs.push(step.logProb);
    if (req.recordEps) eps.push(guided.slice());
    req.onProgress?.({ step: i + 1, steps: timesteps.length, timestep: t });
  }
  return {
    count: K, channels: C, latentHeight: h, latentWidth: w, timesteps, trajectory, logProbs,
    eps: req.recordEps ? eps : undefined, promptEmbeds: cond, negativeEmbeds: uncond,
    seeds, rngStates: rngs.map((g) => g.state()),
  };
}
