/** A model's DDPO training graph: the shapes of one run, checked against what the export fixes, and how the graph is built. */
import type { Model } from '../onnx/ir';
import type { StableDiffusionPipeline } from '../diffusion/pipeline';
import { unetRoles, unetStatics } from '../diffusion/unetRoles';
import { ddpoGraphLayout, ddpoInputShapes, ddpoObjective, ppoConfig } from '../train/objective';
import type { DdpoRunShapes } from '../train/ddpoBatch';
import { isDdpoLossNode } from '../train/losses';
import type { DdimConfig } from '../diffusion/ddim';
import type { TrainingSessionOptions } from '../train/session';
import { timestepsPerRun, type DdpoConfig } from './config';
import { estimateDdpoMemory, type MemoryEstimate } from './memory';

/**
 * The shapes of one training-graph run: B items (train_batch_size samples at train_timesteps_per_run of their timesteps
 * each, or what the export's static batch or scalar timestep allows, a request then running in chunks of B).
 */
export interface DdpoRunShapesOf extends DdpoRunShapes {
  B: number; C: number; h: number; w: number; sequence: number;
  /** Full shapes of the graph's latent and embedding inputs. */
  lat: number[]; emb: number[];
}

/** What the run's shapes are read from: the pipeline when it is open, else the model folder's files. */
export interface RunShapeSource {
  unetPath: string;
  latentChannels: number;
  defaultLatentSize: number;
  /** Text length and width of the embeddings the UNet gets (and SDXL's pooled width). */
  textShape(): Promise<{ sequence: number; dim: number; pooledDim?: number }>;
}

/** {@link RunShapeSource} of an open pipeline (the text shape from encoding the empty prompt). */
export function pipelineShapeSource(pipe: StableDiffusionPipeline): RunShapeSource {
  return { unetPath: pipe.folder.unet, latentChannels: pipe.latentChannels, defaultLatentSize: pipe.defaultLatentSize, textShape: () => pipe.encodePrompts(['']) };
}

/**
 * One graph run trains train_batch_size samples at train_timesteps_per_run of their timesteps each, or fewer where the
 * export's static batch or scalar timestep says so; the latent size and text length must be the ones the export fixes.
 */
export async function ddpoRunShapes(src: RunShapeSource, forward: Model, c: DdpoConfig, onLog?: (line: string) => void): Promise<DdpoRunShapesOf> {
  const K = timestepsPerRun(c), wanted = c.train_batch_size * K;
  const st = unetStatics(unetRoles(forward));
  const C = src.latentChannels;
  const h = c.latent_size || src.defaultLatentSize, w = st.width ?? h;
  if (st.height !== undefined && h !== st.height) {
    throw new Error(`${src.unetPath} is exported for ${st.height}x${st.width ?? st.height} latents only, but latent_size is ${h}; set "latent_size": ${st.height} (or 0) in ddpo.json, or re-export the UNet with dynamic height and width`);
  }
  const probe = await src.textShape();
  if (st.sequence !== undefined && probe.sequence !== st.sequence) {
    throw new Error(`${src.unetPath} takes text embeddings of ${st.sequence} tokens, but the tokenizer and text encoder give ${probe.sequence}; use the text encoder and tokenizer the UNet was exported with`);
  }
  const layout = ddpoGraphLayout(forward, wanted);
  if (layout.samples !== wanted) {
    const why = st.batch !== undefined ? `the UNet is exported for a fixed batch of ${st.batch}` : 'the UNet takes one scalar timestep for its whole batch';
    onLog?.(`training graph takes ${layout.samples} item(s) per run (${why}); ${wanted} items (train_batch_size ${c.train_batch_size} x train_timesteps_per_run ${K}) run in chunks, gradients summed`);
  } else if (K > 1) onLog?.(`training graph takes ${wanted} items per run (train_batch_size ${c.train_batch_size} x train_timesteps_per_run ${K})`);
  const B = layout.samples;
  return { ...layout, B, C, h, w, sequence: probe.sequence, lat: [B, C, h, w], emb: [B, probe.sequence, probe.dim], latent: [C, h, w], embeds: [probe.sequence, probe.dim], pooled: probe.pooledDim };
}

/**
 * The TrainingSession options of a DDPO run on `shapes` (LoRA from the config, the PPO objective with the scheduler's
 * prediction type and x̂₀ clipping, float16 when asked
 * with the loss kept float32); `onEstimate` sees the memory estimate before anything heavy is built, and may throw.
 */
export function ddpoTrainingOptions(c: DdpoConfig, shapes: DdpoRunShapesOf, scheduler: DdimConfig, fp16: boolean, onEstimate: (est: MemoryEstimate) => void): TrainingSessionOptions {
  return {
    lora: { rank: c.lora_rank, alpha: c.lora_alpha, targets: c.lora_target_modules }, seed: c.seed,
    precision: fp16 ? 'fp16' : 'fp32', keepFp32Nodes: isDdpoLossNode,
    objective: (m) => ddpoObjective(m, ppoConfig(c.train_adv_clip_max, scheduler), shapes.unetCalls),
    inputShapes: ddpoInputShapes(shapes.lat, shapes.emb, shapes.scalarTimestep, shapes.pooled),
    beforeBuild: (fwd, inputShapes) => onEstimate(estimateDdpoMemory(fwd, inputShapes, c)),
  };
}
