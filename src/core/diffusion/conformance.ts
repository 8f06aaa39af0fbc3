import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, toFloat32 } from '../safetensors';
import { loadClipTokenizer } from './tokenizer';
import { StableDiffusionPipeline } from './pipeline';
import { sampleDdim } from './sampler';
import { OrtModel, tensorFor, tensorToFloat32 } from '../runtime/ortModel';

/** One conformance check: worst error relative to the reference's largest magnitude. */
export interface ConformanceResult {
  name: string;
  maxRelErr: number;
  passed: boolean;
  detail?: string;
}

/** Relative tolerance for forward values (of the largest reference magnitude). */
export const FORWARD_TOLERANCE = 1e-4;

/** max|a-b| / max|ref|, NaN-safe (a NaN anywhere gives Infinity). */
export function maxRelError(actual: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (actual.length !== ref.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(actual[i] - ref[i]);
    if (!(d <= diff)) diff = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

function result(name: string, maxRelErr: number, detail?: string): ConformanceResult {
  return { name, maxRelErr, passed: maxRelErr <= FORWARD_TOLERANCE, detail };
}

function oracle(path: string): Map<string, Float32Array> {
  if (!existsSync(path)) throw new Error(`Oracle file ${path} is missing; conformance needs a folder in the reference fixture layout`);
  const out = new Map<string, Float32Array>();
  for (const [k, t] of readSafetensors(path)) out.set(k, toFloat32(t));
  return out;
}

function need(m: Map<string, Float32Array>, key: string, file: string): Float32Array {
  const v = m.get(key);
  if (!v) throw new Error(`${file} has no tensor '${key}'`);
  return v;
}

/** Tokenizer vs tokenizer/oracle.json: error is the fraction of wrong ids in the worst case (must be 0). */
export function checkTokenizer(modelDir: string): ConformanceResult[] {
  const dir = join(modelDir, 'tokenizer');
  const spec = JSON.parse(readFileSync(join(dir, 'oracle.json'), 'utf8')) as { cases: { text: string; input_ids: number[] }[] };
  const tok = loadClipTokenizer(dir);
  let worst = 0;
  const failed: string[] = [];
  for (const c of spec.cases) {
    const ids = tok.encode(c.text);
    const wrong = c.input_ids.filter((id, i) => ids[i] !== id).length + Math.abs(ids.length - c.input_ids.length);
    if (wrong > 0) failed.push(JSON.stringify(c.text));
    worst = Math.max(worst, wrong / c.input_ids.length);
  }
  return [{ name: 'tokenizer', maxRelErr: worst, passed: worst === 0, detail: failed.length ? `wrong ids for ${failed.join(', ')}` : `${spec.cases.length} cases` }];
}

/** Text encoder vs text_encoder/oracle.safetensors (ids fed as the model's declared integer type). */
export async function checkTextEncoder(modelDir: string): Promise<ConformanceResult[]> {
  const file = join(modelDir, 'text_encoder/oracle.safetensors');
  const o = oracle(file);
  const model = await OrtModel.load(join(modelDir, 'text_encoder/model.onnx'));
  try {
    const idsSpec = model.input(['input_ids'], (s) => s.shape.length === 2);
    const ids = need(o, 'input_ids', file);
    const batch = ids.length / 77;
    const out = await model.run({ [idsSpec.name]: tensorFor(idsSpec, ids, [batch, ids.length / batch]) });
    const res: ConformanceResult[] = [];
    for (const key of ['last_hidden_state', 'pooler_output']) {
      const ref = o.get(key);
      const got = out[key];
      if (ref && got) res.push(result(`text_encoder.${key}`, maxRelError(tensorToFloat32(got), ref)));
    }
    return res;
  } finally { await model.release(); }
}

/** VAE decoder vs vae_decoder/oracle.safetensors (raw decoder, no scaling). */
export async function checkVaeDecoder(modelDir: string): Promise<ConformanceResult[]> {
  const file = join(modelDir, 'vae_decoder/oracle.safetensors');
  const o = oracle(file);
  const model = await OrtModel.load(join(modelDir, 'vae_decoder/model.onnx'));
  try {
    const spec = model.input(['latent_sample'], (s) => s.shape.length === 4);
    const lat = need(o, 'latent_sample', file);
    const c = 4, hw = Math.round(Math.sqrt(lat.length / c));
    const out = await model.run({ [spec.name]: tensorFor(spec, lat, [1, c, hw, lat.length / c / hw]) });
    return [result('vae_decoder.sample', maxRelError(tensorToFloat32(out[model.output(['sample']).name]), need(o, 'sample', file)))];
  } finally { await model.release(); }
}

/** Whole sampler vs sampler_oracle.*: tokens, embeddings, trajectory, guided eps, log-probs and the decoded image. */
export async function checkSampler(modelDir: string): Promise<ConformanceResult[]> {
  const file = join(modelDir, 'sampler_oracle.safetensors');
  const o = oracle(file);
  const meta = JSON.parse(readFileSync(join(modelDir, 'sampler_oracle.json'), 'utf8')) as { steps: number; eta: number; guidance_scale: number; prompt: string; negative_prompt: string };
  const pipe = await StableDiffusionPipeline.load(modelDir);
  try {
    const res: ConformanceResult[] = [];
    const condIds = pipe.tokenizer.encode(meta.prompt);
    const uncondIds = pipe.tokenizer.encode(meta.negative_prompt);
    res.push(result('sampler.input_ids', Math.max(maxRelError(condIds, need(o, 'cond_input_ids', file)), maxRelError(uncondIds, need(o, 'uncond_input_ids', file)))));
    const latents0 = need(o, 'latents0', file);
    const noiseAll = need(o, 'noise', file);
    const per = latents0.length;
    const hw = Math.round(Math.sqrt(per / 4));
    const r = await sampleDdim(pipe, {
      prompt: meta.prompt, negativePrompt: meta.negative_prompt, count: 1, seed: 0,
      steps: meta.steps, guidance: meta.guidance_scale, eta: meta.eta, latentHeight: hw, latentWidth: per / 4 / hw,
      latents0, noise: Array.from({ length: meta.steps }, (_, i) => noiseAll.subarray(i * per, (i + 1) * per)), recordEps: true,
    });
    res.push(result('sampler.cond_embeds', maxRelError(r.promptEmbeds.data, need(o, 'cond_embeds', file))));
    res.push(result('sampler.uncond_embeds', maxRelError(r.negativeEmbeds.data, need(o, 'uncond_embeds', file))));
    res.push(result('sampler.timesteps', maxRelError(r.timesteps, need(o, 'timesteps', file))));
    res.push(result('sampler.trajectory', maxRelError(flat(r.trajectory), need(o, 'trajectory', file))));
    res.push(result('sampler.eps', maxRelError(flat(r.eps!), need(o, 'eps', file))));
    res.push(result('sampler.log_probs', maxRelError(flat(r.logProbs), need(o, 'log_probs', file))));
    const img = await pipe.decode(r.trajectory[r.trajectory.length - 1], 1, r.latentHeight, r.latentWidth);
    res.push(result('sampler.image', maxRelError(img.data, need(o, 'image', file))));
    return res;
  } finally { await pipe.release(); }
}

function flat(parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
