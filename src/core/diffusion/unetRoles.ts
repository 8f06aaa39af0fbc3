/** A UNet graph's roles: which inputs are the sample, the timestep and the text embeddings, which output the prediction. */
import type { Model, ValueInfo } from '../onnx/ir';

/** The UNet's input/output roles, found by rank and name. */
export interface UnetRoles {
  sample: ValueInfo;
  timestep: ValueInfo;
  encoderHiddenStates: ValueInfo;
  output: ValueInfo;
}

/** Finds sample (rank 4), timestep (name or rank ≤ 1) and encoder_hidden_states (rank 3) among a UNet's inputs. */
export function unetRoles(model: Model): UnetRoles {
  const ins = model.graph.inputs.filter((v) => !model.graph.initializers.has(v.name));
  const sample = ins.find((v) => v.shape?.length === 4);
  const encoderHiddenStates = ins.find((v) => v.shape?.length === 3);
  const timestep = ins.find((v) => /time/i.test(v.name)) ?? ins.find((v) => v !== sample && (v.shape?.length ?? 0) <= 1);
  const output = model.graph.outputs[0];
  if (!sample || !timestep || !encoderHiddenStates || !output) {
    throw new Error(`cannot tell the UNet's inputs apart (${ins.map((v) => `${v.name}${JSON.stringify(v.shape)}`).join(', ')}); ` +
      'expected sample [batch,4,h,w], timestep [batch] or [] and encoder_hidden_states [batch,seq,dim]');
  }
  return { sample, timestep, encoderHiddenStates, output };
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
  return out;
}
