/**
 * `ddpo doctor`: what a model folder holds, whether it samples here (one CPU denoising step and a decode) and trains
 * here (the DDPO training graph built dry at the run's settings, its memory estimated), and for anything it cannot
 * do, why and what to do. New Experiment runs the same check.
 */
import type { ModelFinding, ModelReport } from '../../protocol';
import { inspectModelFolder, type ModelFolder } from '../models/modelFolder';
import { loadModel } from '../onnx/proto';
import { releaseWeights, type Model } from '../onnx/ir';
import { unetRoles, unetStatics } from '../diffusion/unetRoles';
import { parseDdimConfig, type DdimConfig } from '../diffusion/ddim';
import { StableDiffusionPipeline } from '../diffusion/pipeline';
import { sampleDdim } from '../diffusion/sampler';
import { loadClipTokenizer } from '../diffusion/tokenizer';
import { buildTrainingGraph } from '../train/session';
import { standardUnet } from '../train/standardForm';
import { parseDdpoConfig, type DdpoConfig } from '../ddpo/config';
import { availableMemory, checkMemory, type MemoryEstimate } from '../ddpo/memory';
import { ddpoRunShapes, ddpoTrainingOptions, pipelineShapeSource, type RunShapeSource } from '../ddpo/trainingGraph';
import { describeLoraTargets, exporterOf, fixedShapes, fusedOps, precisionOf, unetFamily, type Fact } from './describe';

/** Options of {@link diagnoseModel}. */
export interface DoctorOptions {
  /** ddpo.json settings to check at (default: every default). */
  ddpo?: Record<string, unknown>;
  /** Memory the run may use (default: this machine's free memory plus what the process holds). */
  availableBytes?: number;
  /** Hears each phase as it starts. */
  onProgress?: (message: string) => void;
  /** Cancels the check: it stops before the next phase (loading, sampling, building the training graph). */
  signal?: AbortSignal;
}

/** Checks the model folder `dir`; never throws for a problem of the model, which becomes a finding. */
export async function diagnoseModel(dir: string, opts: DoctorOptions = {}): Promise<ModelReport> {
  const report: ModelReport = { dir, facts: [], canSample: false, canTrain: false, findings: [] };
  const { folder, problems } = inspectModelFolder(dir);
  for (const p of problems) report.findings.push({ area: 'folder', level: 'error', message: p.file === '.' ? p.problem : `${p.file}: ${p.problem}`, fix: FIX.folder });
  if (!folder) return report;
  report.dir = folder.dir;
  opts.signal?.throwIfAborted();
  opts.onProgress?.('reading the UNet');
  const model = attempt(report, 'model', FIX.model, () => loadModel(folder.unet));
  if (!model) return report;
  const c = attempt(report, 'train', 'change the setting in ddpo.json as the message says', () => parseDdpoConfig(opts.ddpo ?? {}).config);
  const scheduler = attempt(report, 'model', FIX.scheduler, () => parseDdimConfig(folder.schedulerConfig, `${folder.dir}/scheduler/scheduler_config.json`));
  if (!attempt(report, 'model', FIX.roles, () => unetRoles(model))) return report;
  report.facts.push(...describe(report, model, scheduler, c));
  opts.signal?.throwIfAborted();
  opts.onProgress?.('sampling one step on the CPU');
  report.canSample = await checkSampling(report, folder, model);
  opts.signal?.throwIfAborted();
  opts.onProgress?.('building the training graph');
  // DDPO trains on its own samples, so a model that cannot sample cannot train either
  report.canTrain = report.canSample && !!c && (await checkTraining(report, folder, model, c, opts.availableBytes));
  releaseWeights(model);
  return report;
}

// What a person can do, by where the problem is.
const FIX = {
  folder: 'point at a Stable Diffusion ONNX folder in the diffusers/optimum layout (model_index.json, unet/, text_encoder/, vae_decoder/, tokenizer/, scheduler/), or download the model again',
  model: 're-export the UNet (optimum-cli export onnx --model <repo> <dir>, or torch.onnx.export) or download it again',
  scheduler: 'fix scheduler/scheduler_config.json: DDPO samples with DDIM from the training betas (beta_schedule scaled_linear or linear)',
  roles: 'export the UNet with inputs sample [batch,4,h,w], timestep ([batch] or a scalar) and encoder_hidden_states [batch,seq,dim]',
  sample: 'the message names the file and the node; re-export the model without that operator (optimum-cli export onnx), or run on the execution provider it was optimised for',
  train: 'training differentiates the UNet itself; re-export it with standard ONNX operators (optimum-cli export onnx, no --optimize), and keep the optimised export for generation',
  lowered: 'nothing, to run here; for speed run on the execution provider the export was optimised for (--ep cuda), or use the unoptimised export',
  memory: 'lower train_batch_size, sample_batch_size or latent_size in ddpo.json, or use a machine with more memory',
};

// Runs `f`; a throw becomes an error finding of `area` (and `undefined`).
function attempt<T>(report: ModelReport, area: ModelFinding['area'], fix: string, f: () => T): T | undefined {
  try { return f(); } catch (e) {
    report.findings.push({ area, level: 'error', message: (e as Error).message, fix });
    return undefined;
  }
}

async function attemptAsync<T>(report: ModelReport, area: ModelFinding['area'], fix: (message: string) => string, f: () => Promise<T>): Promise<T | undefined> {
  try { return await f(); } catch (e) {
    const message = (e as Error).message;
    report.findings.push({ area, level: 'error', message, fix: fix(message) });
    return undefined;
  }
}

function describe(report: ModelReport, model: Model, scheduler: DdimConfig | undefined, c: DdpoConfig | undefined): Fact[] {
  const fused = fusedOps(model);
  // what training sees: the export lowered to standard operators, in float32
  const std = attempt(report, 'train', FIX.train, () => standardUnet(model));
  const facts: Fact[] = [
    { label: 'model', value: `${unetFamily(model, scheduler?.predictionType)}; prediction ${scheduler?.predictionType ?? '?'}, timestep spacing ${scheduler?.timestepSpacing ?? '?'}` },
    { label: 'exporter', value: exporterOf(model) },
    { label: 'shapes', value: fixedShapes(model) },
    { label: 'fused ops', value: fused.size ? `${[...fused].map(([op, k]) => `${op} ×${k}`).join(', ')}${std ? '; training lowers them to standard operators' : ''}` : 'none (standard ONNX operators only)' },
    { label: 'precision', value: precisionOf(model) },
  ];
  const lora = std && attempt(report, 'train', 'set lora_target_modules in ddpo.json to layers the model has, or re-export it with module names kept', () => describeLoraTargets(std.model, c?.lora_target_modules));
  if (lora) facts.push({ label: 'LoRA', value: lora.value });
  return facts;
}

// One denoising step with guidance at the smallest size the export takes, then a decode: text encoder, UNet and VAE all run.
async function checkSampling(report: ModelReport, folder: ModelFolder, model: Model): Promise<boolean> {
  const st = unetStatics(unetRoles(model));
  const ok = await attemptAsync(report, 'sample', sampleFix, async () => {
    const pipe = await StableDiffusionPipeline.load(folder.dir, { onWarning: (message) => report.findings.push({ area: 'sample', level: 'warning', message, fix: FIX.lowered }) });
    try {
      const h = st.height ?? 8, w = st.width ?? h;
      const r = await sampleDdim(pipe, { prompt: 'a photo of a cat', count: 1, seed: 0, steps: 1, guidance: 5, eta: 1, latentHeight: h, latentWidth: w });
      const img = await pipe.decode(r.trajectory[1], 1, h, w);
      if (!img.data.every(Number.isFinite)) throw new Error(`one sampling step at ${h}x${w} latents gave an image with NaN or infinite values`);
      return true;
    } finally { await pipe.release(); }
  });
  return ok === true;
}

function sampleFix(message: string): string {
  const op = /implementation for (\w+)\(\d+\)|Could not find an implementation for (\w+)/.exec(message);
  if (op) return `onnxruntime's CPU provider has no kernel for ${op[1] ?? op[2]}: the export was optimised for a GPU provider; use the unoptimised export on the CPU, or run on that provider (--ep cuda)`;
  return FIX.sample;
}

// The training graph built dry (no session) at the run's settings, and its memory estimate against what is free.
async function checkTraining(report: ModelReport, folder: ModelFolder, model: Model, c: DdpoConfig, available = availableMemory()): Promise<boolean> {
  let estimate: MemoryEstimate | undefined;
  const built = await attemptAsync(report, 'train', trainFix, async () => {
    const shapes = await ddpoRunShapes(await shapeSource(folder, model), model, c);
    buildTrainingGraph(model, ddpoTrainingOptions(c, shapes, parseDdimConfig(folder.schedulerConfig), false, (e) => { estimate = e; }));
    return shapes;
  });
  if (!built || !estimate) return false;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  report.facts.push({ label: 'memory', value: `about ${gb(estimate.totalBytes)} at train_batch_size ${c.train_batch_size}, sample_batch_size ${c.sample_batch_size}, ${built.h}x${built.w} latents (training ${gb(estimate.trainingBytes)}, sampling ${gb(estimate.samplingBytes)}); ${gb(available)} available` });
  return attempt(report, 'memory', FIX.memory, () => { checkMemory(estimate!, c, built.h, available); return true; }) ?? false;
}

function trainFix(message: string): string {
  if (/latents only|text embeddings of/.test(message)) return 'change ddpo.json as the message says';
  if (/no LoRA target layers|lora_target_modules|LoRA targets/.test(message)) return 'set lora_target_modules in ddpo.json to layers the model has, or re-export the UNet with module names kept';
  return FIX.train;
}

// The run's shapes from the pipeline (the text encoder gives the text shape), opened only for that.
async function shapeSource(folder: ModelFolder, model: Model): Promise<RunShapeSource> {
  const roles = unetRoles(model);
  const st = unetStatics(roles);
  const c = roles.sample.shape?.[1], dim = roles.encoderHiddenStates.shape?.[2];
  if (typeof dim !== 'number' || (roles.added && typeof roles.added.textEmbeds.shape?.[1] !== 'number')) {
    const pipe = await StableDiffusionPipeline.load(folder.dir);
    try { const s = pipelineShapeSource(pipe); const t = await s.textShape(); return { ...s, textShape: async () => t }; } finally { await pipe.release(); }
  }
  const sequence = st.sequence ?? loadClipTokenizer(folder.tokenizerDir).maxLength;
  const pooled = roles.added?.textEmbeds.shape?.[1];
  return { unetPath: folder.unet, latentChannels: typeof c === 'number' ? c : 4, defaultLatentSize: st.height ?? folder.unetSampleSize ?? 64, textShape: async () => ({ sequence, dim, pooledDim: typeof pooled === 'number' ? pooled : undefined }) };
}
