/** A UNet graph's roles: which inputs are the sample, the timestep and the text embeddings, which output the prediction. */
import type { Model, ValueInfo } from '../onnx/ir';

/** The UNet's input/output roles, found by rank and name. */
export interface UnetRoles {
  sample: ValueInfo;
  timestep: ValueInfo;
  encoderHiddenStates: ValueInfo;
  output: ValueInfo;
  /** SDXL's added conditioning: the pooled text embedding [batch, P] and the size/crop ids [batch, 6]. */
  added?: { textEmbeds: ValueInfo; timeIds: ValueInfo };
}

/** A graph input or a session's input metadata: enough to tell the roles apart. */
interface Declared { name: string; shape: readonly (number | string | null)[] | null }

/** Which of `ins` are sample (rank 4), timestep (rank ≤ 1, by name first), text embeddings (rank 3), and SDXL's text_embeds and time_ids (rank 2). */
export function findUnetInputs<T extends Declared>(ins: readonly T[]): { sample?: T; timestep?: T; encoderHiddenStates?: T; textEmbeds?: T; timeIds?: T } {
  const sample = ins.find((v) => v.shape?.length === 4);
  const encoderHiddenStates = ins.find((v) => v.shape?.length === 3);
  const small = ins.filter((v) => v !== sample && (v.shape?.length ?? 0) <= 1);
  const timestep = small.find((v) => /time/i.test(v.name)) ?? small[0];
  const rank2 = ins.filter((v) => v.shape?.length === 2);
  // time_ids hold six numbers per row (original size, crop, target size); the pooled embedding is the other one
  const timeIds = rank2.find((v) => /time_ids/i.test(v.name)) ?? rank2.find((v) => v.shape?.[1] === 6);
  const textEmbeds = rank2.find((v) => v !== timeIds);
  return { sample, timestep, encoderHiddenStates, textEmbeds: timeIds ? textEmbeds : undefined, timeIds: textEmbeds ? timeIds : undefined };
}

/** Finds sample (rank 4), timestep (name or rank ≤ 1), encoder_hidden_states (rank 3) and SDXL's added conditioning among a UNet's inputs. */
export function unetRoles(model: Model): UnetRoles {
  const ins = model.graph.inputs.filter((v) => !model.graph.initializers.has(v.name));
  const { sample, timestep, encoderHiddenStates, textEmbeds, timeIds } = findUnetInputs(ins);
  const output = model.graph.outputs[0];
  if (!sample || !timestep || !encoderHiddenStates || !output) {
    throw new Error(`cannot tell the UNet's inputs apart (${ins.map((v) => `${v.name}${JSON.stringify(v.shape)}`).join(', ')}); ` +
      'expected sample [batch,4,h,w], timestep [batch] or [] and encoder_hidden_states [batch,seq,dim]');
  }
  return { sample, timestep, encoderHiddenStates, output, added: textEmbeds && timeIds ? { textEmbeds, timeIds } : undefined };
}

/** SDXL's time_ids of one row for latents h x w: original size, crop top-left, target size, in pixels (the VAE scales by 8). */
export function sdxlTimeIds(h: number, w: number): number[] {
  return [8 * h, 8 * w, 0, 0, 8 * h, 8 * w];
}

/** A dimension as a graph or a session declares it: a fixed size, a symbol, or unknown. */
type DeclaredDim = number | string | null;

/** What a UNet export fixes in its input shapes (unset: free), and whether one scalar timestep serves the whole batch. */
export interface UnetStatics {
  batch?: number;
  height?: number;
  width?: number;
  /** Text length of encoder_hidden_states. */
  sequence?: number;
  scalarTimestep: boolean;
}

/** Reads {@link UnetStatics} from the sample, timestep and text-embedding shapes (graph value infos or session metadata). */
export function unetStatics(r: { sample: { shape: readonly DeclaredDim[] | null }; timestep: { shape: readonly DeclaredDim[] | null }; encoderHiddenStates: { shape: readonly DeclaredDim[] | null } }): UnetStatics {
  const fixed = (d: DeclaredDim | undefined) => (typeof d === 'number' && d > 0 ? d : undefined);
  const s = r.sample.shape ?? [];
  return {
    batch: fixed(s[0]) ?? fixed(r.encoderHiddenStates.shape?.[0]) ?? fixed(r.timestep.shape?.[0]),
    height: fixed(s[2]), width: fixed(s[3]),
    sequence: fixed(r.encoderHiddenStates.shape?.[1]),
    scalarTimestep: (r.timestep.shape?.length ?? 1) === 0,
  };
}

/** Symbolic dims of the UNet's inputs mapped to values, for `freeDimensionOverrides` (static-shape sessions). */
export function unetDimOverrides(model: Model, batch: number, latent: number | readonly [number, number], sequence = 77): Record<string, number> {
  const r = unetRoles(model);
  const out: Record<string, number> = {};
  const set = (d: unknown, v: number) => { if (typeof d === 'string') out[d] = v; };
  const [h, w] = typeof latent === 'number' ? [latent, latent] : latent;
  set(r.sample.shape?.[0], batch);
  set(r.sample.shape?.[2], h);
  set(r.sample.shape?.[3], w);
  set(r.timestep.shape?.[0], batch);
  set(r.encoderHiddenStates.shape?.[0], batch);
  set(r.encoderHiddenStates.shape?.[1], sequence);
  set(r.added?.textEmbeds.shape?.[0], batch);
  set(r.added?.timeIds.shape?.[0], batch);
  return out;
}
