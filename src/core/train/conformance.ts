/** UNet conformance against PyTorch oracles: forward, LoRA VJP and one DDPO step (see shared/fixtures/README.md). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../onnx/proto';
import { Model } from '../onnx/ir';
import { readSafetensors, toFloat32 } from '../safetensors';
import { ConformanceResult, checkSampler, checkTextEncoder, checkTokenizer, checkVaeDecoder, maxRelError } from '../diffusion/conformance';
import { ddimCoefficients, makeDdimSchedule, parseDdimConfig } from '../diffusion/ddim';
import { DEFAULT_LORA_TARGETS } from './loraTargets';
import { LoraWeights, readLora } from './loraFile';
import { ddpoGraphLayout, ddpoInputShapes, ddpoObjective, ddpoScheduleFeeds, dotObjective, ppoConfig } from './objective';
import { runDdpoBatch } from './ddpoBatch';
import { unetRoles, unetStatics } from '../diffusion/unetRoles';
import { predictInChunks, unetFeeds } from '../diffusion/fastUnet';
import { gatherRows, planRowChunks, scatterRows } from '../diffusion/rowChunks';
import { TrainingSession } from './session';
import { createSession } from '../runtime/ortRun';

export type { ConformanceResult } from '../diffusion/conformance';

/** Tolerances, relative to each reference tensor's largest magnitude (float32, CPU EP). */
export const TOLERANCE = { forward: 1e-4, gradient: 1e-3 };

type Oracle = Map<string, { dims: number[]; data: Float32Array }>;

function loadOracle(file: string): Oracle {
  if (!existsSync(file)) throw new Error(`oracle file ${file} is missing; conformance needs a folder in the reference fixture layout`);
  const out: Oracle = new Map();
  for (const [k, t] of readSafetensors(file)) out.set(k, { dims: t.shape, data: toFloat32(t) });
  return out;
}

function need(o: Oracle, key: string, file = 'unet/oracle.safetensors'): { dims: number[]; data: Float32Array } {
  const v = o.get(key);
  if (!v) throw new Error(`${file} has no tensor "${key}"`);
  return v;
}

function check(name: string, actual: ArrayLike<number>, ref: ArrayLike<number>, tol: number, detail?: string): ConformanceResult {
  const e = maxRelError(actual, ref);
  return { name, maxRelErr: e, passed: e <= tol, detail };
}

/** Worst of several tensors' errors as one line, naming the worst tensor. */
function checkMany(name: string, pairs: Array<[string, ArrayLike<number> | undefined, ArrayLike<number>]>, tol: number): ConformanceResult {
  let worst = -1, at = '', missing = 0;
  for (const [k, a, r] of pairs) {
    const e = a ? maxRelError(a, r) : Infinity;
    if (!a) missing++;
    if (e > worst) { worst = e; at = k; }
  }
  const detail = `${pairs.length} tensors, worst ${at}${missing ? `, ${missing} not computed` : ''}`;
  return { name, maxRelErr: worst, passed: worst <= tol, detail };
}

/** `fwd.*`: the UNet alone reproduces `fwd.out_sample` (in runs its static batch or scalar timestep allows). */
export async function checkUnetForward(dir: string, model = loadModel(join(dir, 'unet/model.onnx')), o = loadOracle(join(dir, 'unet/oracle.safetensors'))): Promise<ConformanceResult[]> {
  const session = await createSession(model);
  try {
    const sample = need(o, 'fwd.sample'), ehs = need(o, 'fwd.encoder_hidden_states');
    const [B, , h, w] = sample.dims;
    const context = { data: ehs.data, batch: B, sequence: ehs.dims[1], dim: ehs.dims[2] };
    const out = await predictInChunks({ session, model, roles: unetRoles(model) }, sample.data, B, h, w, Array.from(need(o, 'fwd.timestep').data), context);
    return [check('unet.fwd.out_sample', out, need(o, 'fwd.out_sample').data, TOLERANCE.forward)];
  } finally { await session.release(); }
}

interface LoraSetup { weights: LoraWeights; targets: string[] }

function loraSetup(dir: string): LoraSetup {
  const weights = readLora(join(dir, 'unet/lora_peft.safetensors'));
  const meta = oracleJson(dir);
  const targets = (meta.lora as { targets?: string[] } | undefined)?.targets ?? DEFAULT_LORA_TARGETS;
  return { weights, targets };
}

function oracleJson(dir: string): Record<string, unknown> {
  const f = join(dir, 'unet/oracle.json');
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : {};
}

function dimsOf(model: Model, sample: number[], ehs: number[]): Record<string, number> {
  const roles = unetRoles(model);
  const dims: Record<string, number> = {};
  const bind = (shape: unknown[] | null, actual: number[]) => shape?.forEach((d, k) => { if (typeof d === 'string') dims[d] = actual[k]; });
  bind(roles.sample.shape, sample);
  bind(roles.encoderHiddenStates.shape, ehs);
  return dims;
}

/** `vjp.*`: L = sum(out_sample · R) with the PEFT LoRA applied; LoRA and input gradients (summed over runs, zero R on padding). */
export async function checkUnetVjp(dir: string, model = loadModel(join(dir, 'unet/model.onnx')), o = loadOracle(join(dir, 'unet/oracle.safetensors'))): Promise<ConformanceResult[]> {
  const { weights, targets } = loraSetup(dir);
  const roles = unetRoles(model);
  const st = unetStatics(roles);
  const sample = need(o, 'fwd.sample'), ehs = need(o, 'fwd.encoder_hidden_states'), R = need(o, 'vjp.R');
  const timesteps = Array.from(need(o, 'fwd.timestep').data);
  const B = sample.dims[0];
  // every run the same size, so one graph serves them all
  const chunks = planRowChunks(timesteps, { fixed: st.batch ?? (st.scalarTimestep ? 1 : B), sharedKey: st.scalarTimestep });
  const S = chunks[0].size;
  const session = await TrainingSession.create(model, {
    lora: { rank: weights.rank, alpha: weights.alpha, targets },
    objective: (m) => dotObjective(m, 'vjp_weights'),
    dims: dimsOf(model, [S, ...sample.dims.slice(1)], [S, ...ehs.dims.slice(1)]),
    weights,
    extraWrt: [roles.sample.name, roles.encoderHiddenStates.name],
  });
  try {
    let loss = 0;
    const grads = new Map<string, Float32Array>();
    const per = sample.data.length / B, ePer = ehs.data.length / B;
    const gradSample = new Float32Array(sample.data.length), gradEhs = new Float32Array(ehs.data.length);
    for (const c of chunks) {
      const r = gatherRows(R.data, per, c);
      r.fill(0, c.rows.length * per); // padded rows add nothing to L
      const feeds = unetFeeds(roles, gatherRows(sample.data, per, c), S, sample.dims[2], sample.dims[3], gatherRows(timesteps, 1, c), { data: gatherRows(ehs.data, ePer, c), batch: S, sequence: ehs.dims[1], dim: ehs.dims[2] });
      const res = await session.step(new Map([...feeds, ['vjp_weights', { dims: [S, ...R.dims.slice(1)], data: r }]]));
      loss += res.loss;
      // L sums over samples, so per-run LoRA gradients add up
      for (const [k, g] of res.grads) { const acc = grads.get(k); if (acc) acc.forEach((_, j) => (acc[j] += g[j])); else grads.set(k, Float32Array.from(g)); }
      scatterRows(gradSample, res.inputGrads.get(roles.sample.name)!, per, c);
      scatterRows(gradEhs, res.inputGrads.get(roles.encoderHiddenStates.name)!, ePer, c);
    }
    const res = [check('unet.vjp.loss', [loss], need(o, 'vjp.loss').data, TOLERANCE.forward)];
    res.push(checkMany('unet.vjp.grad.lora', [...weights.modules.keys()].flatMap((m) => (['A', 'B'] as const).map((w): [string, Float32Array | undefined, Float32Array] => {
      const key = `${m}.lora_${w}.weight`;
      return [key, grads.get(key), need(o, `vjp.grad.${key}`).data];
    })), TOLERANCE.gradient));
    res.push(check('unet.vjp.grad.sample', gradSample, need(o, 'vjp.grad.sample').data, TOLERANCE.gradient));
    res.push(check('unet.vjp.grad.encoder_hidden_states', gradEhs, need(o, 'vjp.grad.encoder_hidden_states').data, TOLERANCE.gradient));
    return res;
  } finally { await session.release(); }
}

/** `ddpo.*`: one DDPO policy-gradient step (CFG, DDIM eta log-prob, PPO clip) and its LoRA gradients. */
export async function checkUnetDdpo(dir: string, model = loadModel(join(dir, 'unet/model.onnx')), o = loadOracle(join(dir, 'unet/oracle.safetensors'))): Promise<ConformanceResult[]> {
  const { weights, targets } = loraSetup(dir);
  const cfg = (oracleJson(dir).ddpo ?? {}) as Record<string, number>;
  const scalar = (k: string, key: string) => cfg[k] ?? need(o, key).data[0];
  const t = scalar('timestep', 'ddpo.timestep');
  const steps = cfg.num_inference_steps;
  if (!steps) throw new Error(`${join(dir, 'unet/oracle.json')} lacks ddpo.num_inference_steps`);
  const schedFile = join(dir, 'scheduler/scheduler_config.json');
  const schedule = makeDdimSchedule(parseDdimConfig(JSON.parse(readFileSync(schedFile, 'utf8')), schedFile));
  const eta = scalar('eta', 'ddpo.eta');
  const c = ddimCoefficients(schedule, t, steps, eta);
  const latents = need(o, 'ddpo.latents'), cond = need(o, 'ddpo.cond_embeds');
  const B = latents.dims[0];
  const layout = ddpoGraphLayout(model, B);
  const S = layout.samples;
  const session = await TrainingSession.create(model, {
    lora: { rank: weights.rank, alpha: weights.alpha, targets },
    objective: (m) => ddpoObjective(m, ppoConfig(cfg.adv_clip_max ?? 5, schedule.config), layout.unetCalls),
    // Every input's full shape: the UNet inside runs on 2B, so its own `batch` symbol must not size these.
    inputShapes: ddpoInputShapes([S, ...latents.dims.slice(1)], [S, ...cond.dims.slice(1)], layout.scalarTimestep),
    weights,
  });
  try {
    const fill = (v: number) => new Array<number>(B).fill(v);
    const sched = ddpoScheduleFeeds(schedule, fill(t), steps, eta);
    const r = await runDdpoBatch(session, { ...layout, latent: latents.dims.slice(1), embeds: cond.dims.slice(1) }, {
      latents: latents.data, nextLatents: need(o, 'ddpo.next_latents').data, timesteps: fill(t),
      uncondEmbeds: need(o, 'ddpo.uncond_embeds').data, condEmbeds: cond.data,
      oldLogProbs: Array.from(need(o, 'ddpo.old_log_prob').data), advantages: Array.from(need(o, 'ddpo.advantages').data),
      alphaProdT: Array.from(sched.alpha_prod_t.data), alphaProdTPrev: Array.from(sched.alpha_prod_t_prev.data), eta,
      guidanceScale: scalar('guidance_scale', 'ddpo.guidance_scale'), clipRange: cfg.clip_range ?? 1e-4,
    }, 'step');
    const res = [
      check('unet.ddpo.std', [c.stdDevT], need(o, 'ddpo.std').data, TOLERANCE.forward),
      check('unet.ddpo.log_prob', r.logProbs, need(o, 'ddpo.log_prob').data, TOLERANCE.forward),
      check('unet.ddpo.ratio', r.ratios, need(o, 'ddpo.ratio').data, TOLERANCE.forward),
      check('unet.ddpo.loss', [r.loss], need(o, 'ddpo.loss').data, TOLERANCE.forward),
    ];
    res.push(checkMany('unet.ddpo.grad.lora', [...weights.modules.keys()].flatMap((m) => (['A', 'B'] as const).map((w): [string, Float32Array | undefined, Float32Array] => {
      const key = `${m}.lora_${w}.weight`;
      return [key, r.grads.get(key), need(o, `ddpo.grad.${key}`).data];
    })), TOLERANCE.gradient));
    return res;
  } finally { await session.release(); }
}

/** A check that could not run: reported as one failed line with the reason. */
function failed(name: string, e: unknown): ConformanceResult {
  return { name, maxRelErr: Infinity, passed: false, detail: (e as Error).message };
}

/** Runs every check whose files are present in a fixture-layout folder. `onResult` sees each line as it comes. */
export async function runConformance(dir: string, onResult: (r: ConformanceResult) => void = () => {}): Promise<ConformanceResult[]> {
  const all: ConformanceResult[] = [];
  const run = async (name: string, f: () => Promise<ConformanceResult[]> | ConformanceResult[]) => {
    let rs: ConformanceResult[];
    try { rs = await f(); } catch (e) { rs = [failed(name, e)]; }
    for (const r of rs) { all.push(r); onResult(r); }
  };
  const has = (p: string) => existsSync(join(dir, p));
  if (has('tokenizer/oracle.json')) await run('tokenizer', () => checkTokenizer(dir));
  if (has('text_encoder/oracle.safetensors')) await run('text_encoder', () => checkTextEncoder(dir));
  if (has('vae_decoder/oracle.safetensors')) await run('vae_decoder', () => checkVaeDecoder(dir));
  if (has('unet/oracle.safetensors')) {
    const model = loadModel(join(dir, 'unet/model.onnx'));
    const o = loadOracle(join(dir, 'unet/oracle.safetensors'));
    await run('unet.fwd', () => checkUnetForward(dir, model, o));
    if (has('unet/lora_peft.safetensors')) {
      await run('unet.vjp', () => checkUnetVjp(dir, model, o));
      await run('unet.ddpo', () => checkUnetDdpo(dir, model, o));
    }
  }
  if (has('sampler_oracle.safetensors')) await run('sampler', () => checkSampler(dir));
  if (!all.length) throw new Error(`${dir} holds no oracle files (unet/oracle.safetensors, tokenizer/oracle.json, ...); point at a folder in the reference fixture layout`);
  return all;
}
