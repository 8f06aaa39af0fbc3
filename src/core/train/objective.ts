/** Wraps a UNet graph with a training objective: the DDPO policy-gradient step, the Diffusion-DPO step, or a dot-product (VJP) loss. */
import { GraphBuilder } from '../onnx/builder';
import { DataType, Dim, Model, cloneModel, onnxOpset } from '../onnx/ir';
import { DdimConfig, DdimSchedule, ddimCoefficients } from '../diffusion/ddim';
import { unetRoles, unetStatics, type UnetRoles } from '../diffusion/unetRoles';
import { PpoConfig, appendDdpoLoss, appendDiffusionDpoLoss, appendDotLoss } from './losses';
import { nodesWithoutLora } from './lora';
import { FeedValue } from '../runtime/ortRun';

/** Renames a value everywhere it is produced or read. */
function renameValue(model: Model, from: string, to: string): void {
  for (const n of model.graph.nodes) {
    n.inputs = n.inputs.map((x) => (x === from ? to : x));
    n.outputs = n.outputs.map((x) => (x === from ? to : x));
  }
}

/** The UNet's inputs and output as internal values of the wrapping graph. */
interface UnetIo { sample: string; timestep: string; ehs: string; out: string; added?: { textEmbeds: string; timeIds: string } }

/** Turns the UNet's graph inputs/output into internal values `unet.<name>` so the wrapper can produce/consume them. */
function internalize(model: Model, roles: UnetRoles): UnetIo {
  const g = model.graph;
  const inputs = [roles.sample, roles.timestep, roles.encoderHiddenStates, ...(roles.added ? [roles.added.textEmbeds, roles.added.timeIds] : [])];
  const take = new Set(inputs.map((v) => v.name));
  g.inputs = g.inputs.filter((v) => !take.has(v.name));
  g.outputs = [];
  const inner = (v: { name: string }) => `unet.${v.name}`;
  for (const v of [...inputs, roles.output]) renameValue(model, v.name, inner(v));
  g.valueInfo = g.valueInfo.filter((v) => !take.has(v.name) && v.name !== roles.output.name);
  return {
    sample: inner(roles.sample), timestep: inner(roles.timestep), ehs: inner(roles.encoderHiddenStates), out: inner(roles.output),
    added: roles.added && { textEmbeds: inner(roles.added.textEmbeds), timeIds: inner(roles.added.timeIds) },
  };
}

/**
 * How a DDPO graph lays its samples onto the UNet's batch: `samples` per run; the UNet runs once on [latents; latents]
 * with [uncond; cond], or, where an odd static batch cannot hold both halves, twice (uncond, then cond) on `samples` rows.
 */
export interface DdpoGraphLayout {
  samples: number;
  unetCalls: 1 | 2;
  /** The UNet takes one scalar timestep, so the samples of one run share it. */
  scalarTimestep: boolean;
}

/**
 * The layout for a UNet export and the samples a caller would like per run: that many where the batch is free (one
 * with a scalar timestep, since training samples sit at different timesteps), else what its static batch holds.
 */
export function ddpoGraphLayout(unet: Model, wanted: number): DdpoGraphLayout {
  const st = unetStatics(unetRoles(unet));
  if (st.batch === undefined) return { samples: st.scalarTimestep ? 1 : wanted, unetCalls: 1, scalarTimestep: st.scalarTimestep };
  return st.batch % 2 === 0 ? { samples: st.batch / 2, unetCalls: 1, scalarTimestep: st.scalarTimestep } : { samples: st.batch, unetCalls: 2, scalarTimestep: st.scalarTimestep };
}

/**
 * Builds the DDPO step graph around a UNet: it runs the UNet on [latents; latents] with [uncond; cond]
 * embeddings at `timestep`, guides, scores `next_latents` under the DDIM eta step, and returns the PPO loss.
 * `timestep` keeps the UNet's own type and rank ([B] is duplicated for the doubled batch; a scalar is shared). An SDXL
 * UNet also gets `uncond_text_embeds`/`cond_text_embeds` (pooled) and `time_ids`, paired the same way.
 * The UNet's batch symbol (e.g. `batch`) sizes the new inputs, so specialize with it set to B, not 2B. With
 * `unetCalls` 2 (an odd static batch) the UNet's nodes appear twice, once per half, sharing weights and LoRA inputs.
 */
export function ddpoObjective(unet: Model, cfg: PpoConfig, unetCalls: 1 | 2 = 1): Model {
  const model = cloneModel(unet);
  const roles = unetRoles(model);
  const opset = onnxOpset(model);
  const io = internalize(model, roles);
  const second = unetCalls === 2 ? duplicateNodes(model, ':cond') : undefined;
  const b = new GraphBuilder(model.graph);
  const [n, c, h, w] = roles.sample.shape!;
  const [, seq, dim] = roles.encoderHiddenStates.shape!;
  // the UNet's own batch symbol now counts samples B (the UNet itself runs on 2B)
  const B: Dim = typeof n === 'string' ? n : 'batch';
  const lat: Dim[] = [B, c, h, w];
  const latents = b.input('latents', DataType.FLOAT, lat);
  const nextLatents = b.input('next_latents', DataType.FLOAT, lat);
  const tRank = roles.timestep.shape?.length ?? 1;
  const timestep = b.input('timestep', roles.timestep.elemType, tRank === 0 ? [] : [B]);
  const uncond = b.input('uncond_embeds', DataType.FLOAT, [B, seq, dim]);
  const cond = b.input('cond_embeds', DataType.FLOAT, [B, seq, dim]);
  const oldLogProb = b.input('old_log_prob', DataType.FLOAT, [B]);
  const advantages = b.input('advantages', DataType.FLOAT, [B]);
  const alphaProdT = b.input('alpha_prod_t', DataType.FLOAT, [B]);
  const alphaProdTPrev = b.input('alpha_prod_t_prev', DataType.FLOAT, [B]);
  const eta = b.input('eta', DataType.FLOAT, []);
  const guidanceScale = b.input('guidance_scale', DataType.FLOAT, []);
  const clipRange = b.input('clip_range', DataType.FLOAT, []);
  const axis0 = { axis: { type: 'int' as const, value: 0 } };
  // SDXL: the pooled text embeddings of both prompts and the size/crop ids
  const pooled = roles.added?.textEmbeds.shape?.[1] ?? null;
  const added = io.added && {
    uncond: b.input('uncond_text_embeds', DataType.FLOAT, [B, pooled]), cond: b.input('cond_text_embeds', DataType.FLOAT, [B, pooled]),
    timeIds: b.input('time_ids', roles.added!.timeIds.elemType, [B, 6]), io: io.added,
  };
  let eps = io.out;
  if (second) {
    const halves: Array<[(v: string) => string, string, string | undefined]> = [[(v) => v, uncond, added?.uncond], [second, cond, added?.cond]];
    for (const [name, text, pool] of halves) {
      for (const [v, src] of [[io.sample, latents], [io.timestep, timestep], [io.ehs, text]] as const) b.op('Identity', [src], {}, { outputs: [name(v)] });
      if (added) { b.op('Identity', [pool!], {}, { outputs: [name(added.io.textEmbeds)] }); b.op('Identity', [added.timeIds], {}, { outputs: [name(added.io.timeIds)] }); }
    }
    eps = b.op('Concat', [io.out, second(io.out)], axis0);
  } else {
    b.op('Concat', [latents, latents], axis0, { outputs: [io.sample] });
    b.op('Concat', [uncond, cond], axis0, { outputs: [io.ehs] });
    if (tRank === 0) b.op('Identity', [timestep], {}, { outputs: [io.timestep] });
    else b.op('Concat', [timestep, timestep], axis0, { outputs: [io.timestep] });
    if (added) {
      b.op('Concat', [added.uncond, added.cond], axis0, { outputs: [added.io.textEmbeds] });
      b.op('Concat', [added.timeIds, added.timeIds], axis0, { outputs: [added.io.timeIds] });
    }
  }
  const r = appendDdpoLoss(b, { eps, latents, nextLatents, alphaProdT, alphaProdTPrev, eta, guidanceScale, oldLogProb, advantages, clipRange }, cfg, opset, 4);
  b.output(r.loss, 'loss', DataType.FLOAT, []);
  b.output(r.logProb, 'log_prob', DataType.FLOAT, [B]);
  b.output(r.ratio, 'ratio', DataType.FLOAT, [B]);
  b.output(r.approxKl, 'approx_kl', DataType.FLOAT, []);
  b.output(r.clipFrac, 'clipfrac', DataType.FLOAT, []);
  return model;
}

/**
 * Appends a second copy of every node of `model` (its values renamed with `suffix`; initializers and graph inputs
 * shared); returns the renaming, which also names the copy's versions of values no node produces (its inputs to feed).
 */
function duplicateNodes(model: Model, suffix: string): (value: string) => string {
  const g = model.graph;
  const shared = new Set([...g.initializers.keys(), ...g.inputs.map((v) => v.name)]);
  const rename = (v: string) => (!v || shared.has(v) ? v : `${v}${suffix}`);
  const copies = g.nodes.map((nd) => {
    if (Object.values(nd.attrs).some((a) => a.type === 'graph')) throw new Error(`cannot run the UNet twice in one training graph: node ${nd.name || nd.opType} has a subgraph`);
    return { ...nd, name: `${nd.name}${suffix}`, inputs: nd.inputs.map(rename), outputs: nd.outputs.map(rename), attrs: { ...nd.attrs } };
  });
  g.nodes.push(...copies);
  return rename;
}

/** The DDPO objective's constants: the advantage clip, and how the scheduler steps (what the sampler did). */
export function ppoConfig(advClipMax: number, scheduler: DdimConfig): PpoConfig {
  return { advClipMax, predictionType: scheduler.predictionType, clipSampleRange: scheduler.clipSample ? scheduler.clipSampleRange : undefined };
}

/** Static shapes of the DDPO objective's batch inputs for B samples (timestep [] for scalar-timestep UNets; SDXL's pooled width). */
export function ddpoInputShapes(latents: number[], embeds: number[], scalarTimestep: boolean, pooled?: number): Record<string, number[]> {
  const vec = [latents[0]];
  return {
    latents, next_latents: latents, timestep: scalarTimestep ? [] : vec, uncond_embeds: embeds, cond_embeds: embeds,
    old_log_prob: vec, advantages: vec, alpha_prod_t: vec, alpha_prod_t_prev: vec,
    ...(pooled ? { uncond_text_embeds: [vec[0], pooled], cond_text_embeds: [vec[0], pooled], time_ids: [vec[0], 6] } : {}),
  };
}

/**
 * The schedule feeds of the DDPO graph for per-sample timesteps: ᾱ_t, ᾱ_prev (the same DDIM rule the sampler
 * used, so recomputed log-probs match the stored ones) and eta, which must be > 0 for a log-probability to exist.
 */
export function ddpoScheduleFeeds(schedule: DdimSchedule, timesteps: number[], steps: number, eta: number): Record<'alpha_prod_t' | 'alpha_prod_t_prev' | 'eta', FeedValue> {
  if (!(eta > 0)) throw new Error(`DDPO needs a stochastic sampler: eta must be > 0 (got ${eta}); set sample.eta to 1`);
  const cs = timesteps.map((t) => ddimCoefficients(schedule, t, steps, eta));
  return {
    alpha_prod_t: { dims: [cs.length], data: cs.map((c) => c.alphaProdT) },
    alpha_prod_t_prev: { dims: [cs.length], data: cs.map((c) => c.alphaProdTPrev) },
    eta: { dims: [], data: [eta] },
  };
}

/** A UNet with loss = sum(out_sample · R), R a new graph input `vjp_weights`; inputs keep their names. */
export function dotObjective(unet: Model, weightsInput = 'vjp_weights'): Model {
  const model = cloneModel(unet);
  const out = model.graph.outputs[0];
  const b = new GraphBuilder(model.graph);
  const R = b.input(weightsInput, DataType.FLOAT, out.shape);
  const loss = appendDotLoss(b, out.name, R, onnxOpset(model));
  model.graph.outputs = [];
  b.output(loss, 'loss', DataType.FLOAT, []);
  b.output(out.name, out.name, out.elemType, out.shape);
  return model;
}

/**
 * Builds the Diffusion-DPO step graph around a LoRA-injected UNet: the UNet runs on `noisy_latents` (2B rows, the B
 * preferred images first, then the B rejected ones, pair k's two rows at the same timestep and noise) with
 * `cond_embeds`, and a second copy of its nodes with the LoRA switched off (the reference model: the same weights,
 * no second copy of them) runs on the same inputs; the loss compares both with `target` (see appendDiffusionDpoLoss).
 * `timestep` keeps the UNet's own type and rank ([2B], or one scalar shared by a run's rows).
 */
export function diffusionDpoObjective(unet: Model): Model {
  const model = cloneModel(unet);
  const roles = unetRoles(model);
  const opset = onnxOpset(model);
  const io = internalize(model, roles);
  const refOut = appendReferenceCopy(model, new Set([io.sample, io.timestep, io.ehs]), io.out);
  const b = new GraphBuilder(model.graph);
  const [n, c, h, w] = roles.sample.shape!;
  const [, seq, dim] = roles.encoderHiddenStates.shape!;
  const rows: Dim = typeof n === 'string' ? n : 'batch';
  const lat: Dim[] = [rows, c, h, w];
  const tRank = roles.timestep.shape?.length ?? 1;
  b.op('Identity', [b.input('noisy_latents', DataType.FLOAT, lat)], {}, { outputs: [io.sample] });
  b.op('Identity', [b.input('timestep', roles.timestep.elemType, tRank === 0 ? [] : [rows])], {}, { outputs: [io.timestep] });
  b.op('Identity', [b.input('cond_embeds', DataType.FLOAT, [rows, seq, dim])], {}, { outputs: [io.ehs] });
  const target = b.input('target', DataType.FLOAT, lat);
  const beta = b.input('beta_dpo', DataType.FLOAT, []);
  const r = appendDiffusionDpoLoss(b, { pred: io.out, refPred: refOut, target, beta }, opset, 4);
  b.output(r.loss, 'loss', DataType.FLOAT, []);
  b.output(r.margin, 'margin', DataType.FLOAT, ['pairs']);
  b.output(r.accuracy, 'implicit_acc', DataType.FLOAT, []);
  b.output(r.modelMse, 'model_mse', DataType.FLOAT, []);
  b.output(r.refMse, 'ref_mse', DataType.FLOAT, []);
  return model;
}

/** Static shapes of the Diffusion-DPO objective's inputs for B pairs (2B rows; timestep [] for scalar-timestep UNets). */
export function diffusionDpoInputShapes(pairs: number, latent: readonly number[], embeds: readonly number[], scalarTimestep: boolean): Record<string, number[]> {
  const rows = 2 * pairs;
  return { noisy_latents: [rows, ...latent], target: [rows, ...latent], timestep: scalarTimestep ? [] : [rows], cond_embeds: [rows, ...embeds] };
}

// Appends a copy of the UNet's nodes without the LoRA (the reference model) that reads the same `inputs` and shares
// every weight; returns the name of its output.
function appendReferenceCopy(model: Model, inputs: Set<string>, out: string): string {
  const g = model.graph;
  const shared = new Set([...g.initializers.keys(), ...g.inputs.map((v) => v.name), ...inputs]);
  const rename = (v: string) => (!v || shared.has(v) ? v : `ref/${v}`);
  for (const nd of nodesWithoutLora(g.nodes)) {
    if (Object.values(nd.attrs).some((a) => a.type === 'graph')) throw new Error(`cannot add the reference UNet to the training graph: node ${nd.name || nd.opType} has a subgraph`);
    g.nodes.push({ ...nd, name: `ref${nd.name.startsWith('/') ? '' : '/'}${nd.name}`, inputs: nd.inputs.map(rename), outputs: nd.outputs.map(rename), attrs: { ...nd.attrs } });
  }
  return rename(out);
}
