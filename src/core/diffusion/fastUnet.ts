/**
 * Generation on a GPU provider with the UNet rebuilt for it: attention cores fused into one kernel each and float16
 * compute (float32 in and out), as the DDPO policy samples; about twice as fast there as the exported float32 UNet
 * (docs/performance.md, "Generation").
 */
import type * as ort from 'onnxruntime-node';
import { loadModel } from '../onnx/proto';
import { releaseWeights, type Model } from '../onnx/ir';
import { inferenceGraph } from './inferenceGraph';
import type { SessionProviders } from '../runtime/sessionProviders';
import { createSession, runModel, type FeedValue } from '../runtime/ortRun';
import { sdxlTimeIds, unetRoles, unetStatics, type UnetRoles } from './unetRoles';
import { gatherRows, mapRowChunks, planRowChunks } from './rowChunks';
import { pooledOf, type Embeddings, type StableDiffusionPipeline, type UnetRunner } from './pipeline';

/** How the rebuilt UNet computes. */
export interface FastUnetOptions {
  /** Float16 compute (default true). */
  fp16?: boolean;
  /** Fused attention (default true). */
  fuse?: boolean;
  /** Providers of the rebuilt session: the one the exported UNet runs on, without a CPU fallback (else generation stays exported). */
  providers?: SessionProviders;
  threads?: number;
  /** One line when the UNet is rebuilt, and why generation stays on the exported UNet if it cannot be. */
  onLog?: (line: string) => void;
}

/** A UNet session and the graph it runs, which may be specialised to one batch (a PyTorch export rebuilt for fusing). */
export interface UnetSession {
  session: ort.InferenceSession;
  model: Model;
  roles: UnetRoles;
  /** The UNet batch the graph was specialised to, if it was. */
  staticBatch?: number;
}

// The key (latent size and text length) a specialised graph was built for.
interface Built extends UnetSession { key: string }

/**
 * Makes `pipe` predict with a rebuilt UNet. It is built at the first call, for that call's shapes where fusing needs
 * static shapes (PyTorch exports; our builder's graphs fuse as they are), then the exported UNet's session is
 * released. A specialised graph runs other batch sizes in chunks of its own (the last padded), and is rebuilt for
 * another latent size or text length. If the first build fails, generation goes on with the exported UNet.
 */
export function useFastUnet(pipe: StableDiffusionPipeline, opts: FastUnetOptions = {}): void {
  const fp16 = opts.fp16 ?? true, fuse = opts.fuse ?? true;
  let built: Promise<Built> | undefined;
  let failed = false;
  const build = async (batch: number, h: number, w: number, sequence: number, key: string): Promise<Built> => {
    const forward = loadModel(pipe.folder.unet);
    const g = inferenceGraph(forward, { batch, latent: [h, w], sequence, fp16, fuse });
    releaseWeights(forward);
    const what = [g.fp16 ? 'float16' : '', g.fusedAttention ? `${g.fusedAttention} attention cores fused` : ''].filter(Boolean).join(', ');
    if (!what) throw new Error('neither float16 nor fused attention applies to it');
    const session = await createSession(g.model, { providers: opts.providers, threads: opts.threads, name: 'unet (rebuilt)' });
    releaseWeights(g.model);
    opts.onLog?.(`generation UNet rebuilt: ${what}${g.staticBatch ? ` (specialised to UNet batch ${batch}, ${h}x${w} latents)` : ''}`);
    return { session, model: g.model, roles: unetRoles(g.model), staticBatch: g.staticBatch, key };
  };
  const release = async () => { const b = await built?.catch(() => undefined); await b?.session.release(); };
  const runner: UnetRunner = {
    async predict(sample, batch, h, w, t, context, fallback) {
      if (failed) return fallback();
      const key = `${h}x${w}/${context.sequence}`;
      const b = await built?.catch(() => undefined);
      if (b && !(b.staticBatch && b.key !== key)) return predictInChunks(b, sample, batch, h, w, t, context);
      const first = !built;
      await release();
      built = build(batch, h, w, context.sequence, key);
      try {
        // the exported UNet goes only once the rebuilt one has run: a provider may refuse a kernel only at run time
        const out = await predictInChunks(await built, sample, batch, h, w, t, context);
        if (first) await pipe.releaseUnet();
        return out;
      } catch (e) {
        if (!first) throw new Error(`rebuilding the generation UNet for ${key} latents/text failed: ${(e as Error).message}`);
        failed = true;
        await release();
        opts.onLog?.(`generation stays on the exported UNet: rebuilding it failed: ${(e as Error).message}`);
        return fallback();
      }
    },
    release,
  };
  pipe.useUnetRunner(runner);
}

/** The feeds of one UNet evaluation of `batch` latents `[batch, C, h, w]` at timestep `t` (one for all rows or one per row; fed scalar or per row, as the graph takes it). */
export function unetFeeds(roles: UnetRoles, sample: Float32Array, batch: number, h: number, w: number, t: number | ArrayLike<number>, context: Embeddings): Map<string, FeedValue> {
  const ts = typeof t === 'number' ? new Array<number>(batch).fill(t) : t;
  const feeds = new Map<string, FeedValue>([
    [roles.sample.name, { dims: [batch, sample.length / (batch * h * w), h, w], data: sample }],
    [roles.timestep.name, unetStatics(roles).scalarTimestep ? { dims: [], data: [ts[0]] } : { dims: [batch], data: ts }],
    [roles.encoderHiddenStates.name, { dims: [batch, context.sequence, context.dim], data: context.data }],
  ]);
  if (roles.added) {
    feeds.set(roles.added.textEmbeds.name, { dims: [batch, context.pooledDim ?? 0], data: pooledOf(context, roles.added.textEmbeds.name) });
    feeds.set(roles.added.timeIds.name, { dims: [batch, 6], data: new Array(batch).fill(sdxlTimeIds(h, w)).flat() });
  }
  return feeds;
}

/**
 * One UNet evaluation of `batch` rows on `u` at timestep `t` (shared, or one per row): in chunks of its specialised or
 * exported-static batch, the last chunk padded (UNet rows do not mix, so padding changes no real row), and, where the
 * graph takes one scalar timestep, only rows of one timestep per run; `extra` feeds (LoRA weights) go with each chunk.
 */
export async function predictInChunks(u: UnetSession, sample: Float32Array, batch: number, h: number, w: number, t: number | readonly number[], context: Embeddings, extra?: ReadonlyMap<string, FeedValue>): Promise<Float32Array> {
  const roles = u.roles;
  const st = unetStatics(roles);
  const ts = typeof t === 'number' ? new Array<number>(batch).fill(t) : t;
  const chunks = planRowChunks(ts, { fixed: u.staticBatch ?? st.batch, sharedKey: st.scalarTimestep });
  const per = sample.length / batch, ctxPer = context.sequence * context.dim;
  return mapRowChunks(batch, per, chunks, async (c) => {
    const pooled = context.pooled && { pooled: gatherRows(context.pooled, context.pooledDim!, c) };
    const feeds = unetFeeds(roles, gatherRows(sample, per, c), c.size, h, w, gatherRows(ts, 1, c), { ...context, data: gatherRows(context.data, ctxPer, c), ...pooled });
    for (const [k, v] of extra ?? []) feeds.set(k, v);
    const res = await runModel(u.session, u.model, feeds, [roles.output.name]);
    return res.get(roles.output.name)!.data;
  });
}
