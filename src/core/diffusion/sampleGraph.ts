/** DDIM sampling with the step as an ONNX graph: UNet output -> step graph -> next UNet input, tensors chained. */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/proto';
import { readFloat32, tensorFor } from '../runtime/ortModel';
import { ddimCoefficients } from './ddim';
import { buildDdimStepGraph, ddimGraphCoefficients, DdimGraphSpec } from './ddimGraph';
import { StableDiffusionPipeline } from './pipeline';
import type { SampleRequest, SampleResult } from './sampleRequest';
import { prepareSampling } from './sampleRequest';

/**
 * True for providers whose outputs can stay in GPU buffers between sessions: none. Not WebGPU: onnxruntime-node aborts the
 * whole process ("terminate called after throwing an instance of 'char const*'") when a WebGPU session asks for
 * gpu-buffer outputs (docs/performance.md). Not CUDA: onnxruntime-node's binding wraps every gpu-buffer tensor in
 * WebGPU's memory info (it has no CUDA I/O binding), so a CUDA output fed to the next session would be read as a WebGPU
 * buffer. Every session hands its outputs to the host.
 */
export function keepsOutputsOnDevice(_ep: string): boolean {
  return false;
}

async function stepSession(pipe: StableDiffusionPipeline, spec: DdimGraphSpec): Promise<ort.InferenceSession> {
  return pipe.auxSession(`ddim:${JSON.stringify(spec)}`, async () => {
    const onDevice = keepsOutputsOnDevice(pipe.ep);
    const hasNext = spec.cfg || spec.unetType === 'float16';
    return ort.InferenceSession.create(encodeModel(buildDdimStepGraph(spec)), {
      executionProviders: pipe.ep === 'cpu' ? ['cpu'] : [pipe.ep, 'cpu'],
      // the trajectory and log-probs come back to the host (DDPO stores them); the next UNet batch stays on the device
      ...(onDevice ? { preferredOutputLocation: { prev_sample: 'cpu', log_prob: 'cpu', ...(hasNext ? { next_model_input: 'gpu-buffer' } : {}) } } : {}),
    });
  });
}

/** {@link sampleDdim} with the DDIM/CFG arithmetic in an ONNX graph; same results as the host engine to float32 rounding. */
export async function sampleDdimGraph(pipe: StableDiffusionPipeline, req: SampleRequest): Promise<SampleResult> {
  if (req.recordEps) throw new Error("recordEps needs the host sampler (engine 'host'): the step graph does not return the guided output");
  if (pipe.unetAdded) throw new Error("the graph sampler does not feed SDXL's added conditioning (text_embeds, time_ids); use engine 'host'");
  const p = await prepareSampling(pipe, req);
  const { K, C, h, w, per, timesteps, useCfg, context, draw } = p;
  const M = useCfg ? 2 : 1;
  const fixed = pipe.unet.fixedBatch(pipe.unetSample);
  if (fixed !== undefined && fixed !== M * K) {
    throw new Error(`${pipe.unet.path} has a fixed batch of ${fixed}, but the graph sampler runs the UNet on ${M * K} latents at once; use engine 'host' or count ${fixed / M}`);
  }
  const unetType = pipe.unetSample.type === 'float16' ? 'float16' : 'float32';
  const cfg = pipe.schedule.config;
  const session = await stepSession(pipe, {
    batch: K, channels: C, height: h, width: w, cfg: useCfg, predictionType: cfg.predictionType,
    clipSampleRange: cfg.clipSample ? cfg.clipSampleRange : undefined, unetType,
  });
  const trajectory: Float32Array[] = [draw(req.latents0, 'latents0')];
  const logProbs: Float64Array[] = [];
  const dims = [M * K, C, h, w];
  const first = new Float32Array(M * K * per);
  for (let m = 0; m < M; m++) first.set(trajectory[0], m * K * per);
  let unetIn: ort.Tensor = tensorFor(pipe.unetSample, first, dims);
  const ctx = tensorFor(pipe.unetContext, context.data, [M * K, context.sequence, context.dim]);
  const zeros = new Float32Array(K * per);
  const release = (t: ort.Tensor) => { if (t.location !== 'cpu') t.dispose(); };
  try {
    for (let i = 0; i < timesteps.length; i++) {
      req.signal?.throwIfAborted();
      const t = timesteps[i];
      const ts = pipe.unetTimestep.shape.length === 0 ? tensorFor(pipe.unetTimestep, [t], []) : tensorFor(pipe.unetTimestep, new Array(M * K).fill(t), [M * K]);
      const out = (await pipe.runUnet({ [pipe.unetSample.name]: unetIn, [pipe.unetTimestep.name]: ts, [pipe.unetContext.name]: ctx }))[pipe.unetOutput.name];
      const c = ddimCoefficients(pipe.schedule, t, req.steps, req.eta);
      const noise = c.stdDevT === 0 ? zeros : draw(req.noise?.[i], `noise[${i}]`);
      const r = await session.run({
        sample: new ort.Tensor('float32', trajectory[i], [K, C, h, w]),
        model_output: out,
        noise: new ort.Tensor('float32', noise, [K, C, h, w]),
        coefficients: new ort.Tensor('float32', ddimGraphCoefficients(c, req.guidance), [8]),
      });
      release(out);
      release(unetIn);
      trajectory.push(await readFloat32(r.prev_sample));
      const lp = await readFloat32(r.log_prob);
      logProbs.push(Float64Array.from(lp, (v) => (c.stdDevT === 0 ? NaN : v)));
      unetIn = r.next_model_input ?? tensorFor(pipe.unetSample, trajectory[i + 1], dims);
      req.onProgress?.({ step: i + 1, steps: timesteps.length, timestep: t });
    }
  } finally {
    release(unetIn);
  }
  return {
    count: K, channels: C, latentHeight: h, latentWidth: w, timesteps, trajectory, logProbs,
    promptEmbeds: p.cond, negativeEmbeds: p.uncond, seeds: p.seeds, rngStates: p.rngs.map((g) => g.state()),
  };
}
