/**
 * A DDPO batch of any size through a training graph built for fewer samples per run (a static-batch or scalar-timestep
 * export): runs of the graph's size, the last padded with zero-advantage copies, the gradient summed to that of the
 * mean loss over the whole batch.
 */
import type { FeedValue } from '../runtime/ortRun';
import { gatherRows, planRowChunks, type RowChunk } from '../diffusion/rowChunks';
import type { DdpoGraphLayout } from './objective';
import type { TrainingSession } from './session';

/** N samples' transitions, batch-major: latents `[N, C, h, w]`, embeddings `[N, seq, dim]`, one value per sample. */
export interface DdpoBatch {
  latents: Float32Array;
  nextLatents: Float32Array;
  timesteps: readonly number[];
  uncondEmbeds: Float32Array;
  condEmbeds: Float32Array;
  /** SDXL: pooled text embeddings `[N, pooled]` and size/crop ids `[N, 6]`. */
  added?: { uncondPooled: Float32Array; condPooled: Float32Array; timeIds: ArrayLike<number> };
  oldLogProbs: readonly number[];
  advantages: readonly number[];
  alphaProdT: readonly number[];
  alphaProdTPrev: readonly number[];
  eta: number;
  guidanceScale: number;
  clipRange: number;
}

/** The per-sample shapes of a DDPO training graph and its layout. */
export interface DdpoRunShapes extends DdpoGraphLayout {
  /** `[C, h, w]` of one latent and `[seq, dim]` of one embedding. */
  latent: readonly number[];
  embeds: readonly number[];
  /** SDXL's pooled text width. */
  pooled?: number;
}

/** The batch's loss, metrics, per-sample log-probs and ratios, and (for a step) the LoRA gradients. */
export interface DdpoBatchResult {
  loss: number;
  approxKl: number;
  clipfrac: number;
  logProbs: number[];
  ratios: number[];
  grads: Map<string, Float32Array>;
  overflow: boolean;
}

/** The runs a batch of `n` samples at `timesteps` takes on a graph of `shapes.samples` per run. */
export function ddpoChunks(timesteps: readonly number[], shapes: DdpoGraphLayout): RowChunk[] {
  return planRowChunks(timesteps, { fixed: shapes.samples, sharedKey: shapes.scalarTimestep });
}

/** Forward and backward (`step`) or forward only (`evaluate`, for log-probs) of the whole batch. */
export async function runDdpoBatch(session: TrainingSession, shapes: DdpoRunShapes, batch: DdpoBatch, mode: 'step' | 'evaluate'): Promise<DdpoBatchResult> {
  const n = batch.timesteps.length;
  const chunks = ddpoChunks(batch.timesteps, shapes);
  const logProbs = new Array<number>(n).fill(NaN), ratios = new Array<number>(n).fill(NaN);
  const grads = new Map<string, Float32Array>();
  let loss = 0, overflow = false;
  let graphMetrics: { approxKl: number; clipfrac: number } | undefined;
  for (const c of chunks) {
    const feeds = chunkFeeds(shapes, batch, c);
    // the graph's loss is the mean over its rows, padding (advantage 0) adding zero: weight it by its share of the batch
    const weight = c.size / n;
    let outs: Map<string, Float32Array>;
    if (mode === 'step') {
      const r = await session.step(feeds);
      outs = r.metrics;
      loss += weight * r.loss;
      overflow ||= r.overflow;
      for (const [k, g] of r.grads) {
        const acc = grads.get(k);
        if (!acc) grads.set(k, weight === 1 ? g : g.map((v) => v * weight));
        else for (let i = 0; i < g.length; i++) acc[i] += weight * g[i];
      }
    } else outs = await session.evaluate(feeds);
    c.rows.forEach((r, k) => { logProbs[r] = outs.get('log_prob')![k]; ratios[r] = outs.get('ratio')![k]; });
    if (chunks.length === 1 && c.size === n) graphMetrics = { approxKl: outs.get('approx_kl')![0], clipfrac: outs.get('clipfrac')![0] };
  }
  return { loss, ...(graphMetrics ?? hostMetrics(batch, logProbs, ratios)), logProbs, ratios, grads, overflow };
}

// approx KL and clip fraction over the real samples, as the graph computes them for one run (float32 differences)
function hostMetrics(batch: DdpoBatch, logProbs: number[], ratios: number[]): { approxKl: number; clipfrac: number } {
  let kl = 0, clipped = 0;
  logProbs.forEach((lp, i) => {
    const d = Math.fround(lp - batch.oldLogProbs[i]);
    kl += d * d;
    if (Math.abs(Math.fround(ratios[i] - 1)) > Math.fround(batch.clipRange)) clipped++;
  });
  return { approxKl: (0.5 * kl) / logProbs.length, clipfrac: clipped / logProbs.length };
}

// the graph's inputs for one run; padded rows copy the run's first sample with advantage 0, so they add no loss or gradient
function chunkFeeds(shapes: DdpoRunShapes, b: DdpoBatch, c: RowChunk): Record<string, FeedValue> {
  const S = c.size;
  const lat = [S, ...shapes.latent], emb = [S, ...shapes.embeds];
  const per = shapes.latent.reduce((x, y) => x * y, 1), ePer = shapes.embeds.reduce((x, y) => x * y, 1);
  const vec = (v: readonly number[]) => ({ dims: [S], data: gatherRows(v, 1, c) });
  const advantages = gatherRows(b.advantages, 1, c);
  advantages.fill(0, c.rows.length);
  return {
    latents: { dims: lat, data: gatherRows(b.latents, per, c) }, next_latents: { dims: lat, data: gatherRows(b.nextLatents, per, c) },
    timestep: shapes.scalarTimestep ? { dims: [], data: [b.timesteps[c.rows[0]]] } : vec(b.timesteps),
    uncond_embeds: { dims: emb, data: gatherRows(b.uncondEmbeds, ePer, c) }, cond_embeds: { dims: emb, data: gatherRows(b.condEmbeds, ePer, c) },
    old_log_prob: vec(b.oldLogProbs), advantages: { dims: [S], data: advantages },
    alpha_prod_t: vec(b.alphaProdT), alpha_prod_t_prev: vec(b.alphaProdTPrev),
    eta: { dims: [], data: [b.eta] }, guidance_scale: { dims: [], data: [b.guidanceScale] }, clip_range: { dims: [], data: [b.clipRange] },
    ...(b.added && shapes.pooled ? {
      uncond_text_embeds: { dims: [S, shapes.pooled], data: gatherRows(b.added.uncondPooled, shapes.pooled, c) },
      cond_text_embeds: { dims: [S, shapes.pooled], data: gatherRows(b.added.condPooled, shapes.pooled, c) },
      time_ids: { dims: [S, 6], data: gatherRows(b.added.timeIds, 6, c) },
    } : {}),
  };
}
