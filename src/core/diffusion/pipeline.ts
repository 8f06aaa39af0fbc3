import type * as ort from 'onnxruntime-node';

export type { Embeddings } from './textEncoders';
import { ClipTokenizer, loadClipTokenizer } from './tokenizer';
import { TextEncoders, concat, type Embeddings } from './textEncoders';
import { DdimSchedule, makeDdimSchedule, parseDdimConfig } from './ddim';
import { ModelFolder, loadModelFolder, modelFingerprint } from '../models/modelFolder';
import { IoSpec, OrtModel, readFloat32, tensorFor, tensorToFloat32 } from '../runtime/ortModel';
import type { ExecutionProvider } from '../runtime/providers';
import { findUnetInputs, sdxlTimeIds, unetStatics } from './unetRoles';
import { gatherRows, mapRowChunks, planRowChunks } from './rowChunks';
import { missingKernel } from '../runtime/ortLoadError';
import { openModel, type OpenedModel } from '../runtime/ortRun';
import { loadModel } from '../onnx/proto';
import type { SessionProviders } from '../runtime/sessionProviders';

/** Options for {@link StableDiffusionPipeline.load}. */
export interface PipelineOptions {
  ep?: ExecutionProvider;
  /**
   * Extra session options for the UNet only, e.g. `freeDimensionOverrides` for a static-shape session or
   * `preferredOutputLocation: 'gpu-buffer'` so the graph sampler can chain its output on the device.
   */
  unetOptions?: ort.InferenceSession.SessionOptions;
  /** Providers every session tries, best first, falling back per model (overrides `ep`). */
  providers?: SessionProviders;
  /** Hears problems a person can act on, e.g. a prompt longer than the text encoder reads (once per prompt). */
  onWarning?: (message: string) => void;
}

/** Runs UNet evaluations in place of the exported UNet's session (e.g. a rebuilt float16 graph with fused attention). */
export interface UnetRunner {
  /** As {@link StableDiffusionPipeline.predict}; `fallback` runs the exported UNet while its session is still open. */
  predict(sample: Float32Array, batch: number, height: number, width: number, t: number, context: Embeddings, fallback: () => Promise<Float32Array>): Promise<Float32Array>;
  release(): Promise<void>;
}

/** Stable Diffusion ONNX models loaded once: tokenizer, text encoder, UNet, VAE decoder and the DDIM schedule. */
export class StableDiffusionPipeline {
  readonly unetSample: IoSpec;
  readonly unetTimestep: IoSpec;
  readonly unetContext: IoSpec;
  readonly unetOutput: IoSpec;
  /** SDXL's added conditioning inputs (pooled text embedding, size/crop ids), when the UNet takes them. */
  readonly unetAdded?: { textEmbeds: IoSpec; timeIds: IoSpec };
  private readonly vaeIn: IoSpec;
  private readonly vaeOut: IoSpec;
  private measuredScale?: number;
  private readonly aux = new Map<string, Promise<ort.InferenceSession>>();
  private runner?: UnetRunner;
  /** The execution provider the sessions were opened on. */
  ep: ExecutionProvider = 'cpu';
  /** See {@link PipelineOptions.onWarning}. */
  onWarning?: (message: string) => void;
  private unetModel: OrtModel;
  // opens the UNet again with its fused com.microsoft ops lowered, for a kernel that fails only when it runs
  private reopenLowered?: () => Promise<OrtModel>;

  /** The UNet's session and metadata. */
  get unet(): OrtModel {
    return this.unetModel;
  }

  private constructor(
    readonly folder: ModelFolder,
    readonly schedule: DdimSchedule,
    /** The text encoders (one; two for SDXL) and their tokenizers. */
    readonly text: TextEncoders,
    unet: OrtModel,
    readonly vaeDecoder: OrtModel,
  ) {
    this.unetModel = unet;
    const rank = (n: number) => (s: IoSpec) => s.shape.length === n;
    const found = findUnetInputs(unet.inputs);
    this.unetSample = found.sample ?? unet.input(['sample'], rank(4));
    this.unetTimestep = found.timestep ?? unet.input(['timestep', 't'], (s) => s.shape.length <= 1);
    this.unetContext = found.encoderHiddenStates ?? unet.input(['encoder_hidden_states'], rank(3));
    this.unetAdded = found.textEmbeds && found.timeIds ? { textEmbeds: found.textEmbeds, timeIds: found.timeIds } : undefined;
    this.unetOutput = unet.output(['out_sample']);
    this.vaeIn = vaeDecoder.input(['latent_sample'], rank(4));
    this.vaeOut = vaeDecoder.output(['sample']);
    const known = [this.unetSample, this.unetTimestep, this.unetContext, this.unetAdded?.textEmbeds, this.unetAdded?.timeIds];
    const extra = unet.inputs.filter((s) => !known.includes(s));
    if (extra.length > 0) {
      throw new Error(`${unet.path} needs inputs ${extra.map((s) => s.name).join(', ')}, which a Stable Diffusion pipeline does not feed; ` +
        'the UNets supported take sample, timestep, encoder_hidden_states and, for SDXL, text_embeds and time_ids');
    }
  }

  /** The first text encoder's tokenizer. */
  get tokenizer(): ClipTokenizer {
    return this.text.tokenizer;
  }

  /** Validates the folder (listing every missing file), then opens the three sessions on `ep`. */
  static async load(dir: string, opts: PipelineOptions = {}): Promise<StableDiffusionPipeline> {
    const folder = loadModelFolder(dir);
    const tokenizer = loadClipTokenizer(folder.tokenizerDir);
    // Any diffusers scheduler config carries the training betas; DDPO always samples with DDIM.
    const schedule = makeDdimSchedule(parseDdimConfig(folder.schedulerConfig, `${folder.dir}/scheduler/scheduler_config.json`));
    const ep = opts.ep ?? 'cpu';
    const pv = opts.providers;
    const open = (file: string, extra?: ort.InferenceSession.SessionOptions) => openModelFile(file, pv ?? { candidates: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'] }, extra, !pv);
    const [te, te2, unet, vae] = await Promise.all([
      open(folder.textEncoder), folder.textEncoder2 ? open(folder.textEncoder2) : undefined, open(folder.unet, opts.unetOptions), open(folder.vaeDecoder),
    ]);
    const sdxl = !!findUnetInputs(unet.inputs).timeIds;
    const encoders = [{ model: te, tokenizer }, ...(te2 ? [{ model: te2, tokenizer: folder.tokenizer2Dir ? loadClipTokenizer(folder.tokenizer2Dir) : tokenizer }] : [])];
    let text: TextEncoders;
    try {
      text = new TextEncoders(sdxl ? encoders : encoders.slice(0, 1), { sdxl, forceZerosForEmptyPrompt: folder.forceZerosForEmptyPrompt, onWarning: (m) => opts.onWarning?.(m) });
    } catch (e) {
      await Promise.all([te, te2, unet, vae].map((m) => m?.release()));
      throw e;
    }
    if (!sdxl) await te2?.release();
    const pipe = new StableDiffusionPipeline(folder, schedule, text, unet, vae);
    pipe.reopenLowered = async () => wrapLowered(folder.unet, await openModel(loadModel(folder.unet), { providers: pv ?? { candidates: [unet.ep] }, extra: opts.unetOptions, name: folder.unet, lowerFused: true }));
    // The DDIM step graph follows the UNet, whose output it takes.
    pipe.ep = unet.ep;
    pipe.onWarning = opts.onWarning;
    for (const m of [te, te2, unet, vae]) {
      if (!m) continue;
      if (m.loweredOps) opts.onWarning?.(`${m.path} uses ${m.loweredOps.join(', ')} (onnxruntime's fused operators), which ${m.ep} has no kernel for; it runs them as standard ONNX operators (slower than on the provider it was optimised for)`);
    }
    return pipe;
  }

  /** A small helper session (e.g. the DDIM step graph) opened once per key on this pipeline's provider. */
  auxSession(key: string, create: () => Promise<ort.InferenceSession>): Promise<ort.InferenceSession> {
    let s = this.aux.get(key);
    if (!s) { s = create(); this.aux.set(key, s); }
    return s;
  }

  /** Latent channels the UNet declares (4 for SD). */
  get latentChannels(): number {
    const c = this.unetSample.shape[1];
    return typeof c === 'number' ? c : 4;
  }

  /** Default latent size: fixed UNet input size, else unet/config.json sample_size, else 64 (512 px). */
  get defaultLatentSize(): number {
    const h = this.unetSample.shape[2];
    return typeof h === 'number' ? h : this.folder.unetSampleSize ?? 64;
  }

  /** Pixels per latent pixel (8 for SD): from the VAE config, else measured once by decoding an 8x8 latent. */
  async vaeScaleFactor(): Promise<number> {
    if (this.folder.vaeScaleFactor) return this.folder.vaeScaleFactor;
    if (this.measuredScale === undefined) {
      const probe = await this.decode(new Float32Array(this.latentChannels * 64), 1, 8, 8);
      this.measuredScale = probe.height / 8;
    }
    return this.measuredScale;
  }

  /** Short content hash of the model files (for image metadata). */
  get modelHash(): string {
    return modelFingerprint(this.folder);
  }

  /** Runs the (first) text encoder on token ids (one row per prompt) -> last_hidden_state. */
  encodeIds(rows: number[][]): Promise<Embeddings> {
    return this.text.encodeIds(rows);
  }

  /**
   * Tokenizes and encodes prompts (SDXL: both encoders, and an empty negative prompt as zeros); a prompt longer than the
   * tokenizer's length is cut, with one warning per prompt.
   */
  encodePrompts(prompts: string[], opts: { negative?: boolean } = {}): Promise<Embeddings> {
    return this.text.encode(prompts, opts.negative);
  }

  /** One UNet evaluation of `batch` latents at timestep `t` with context `[batch, seq, dim]`; returns the raw prediction. */
  async predict(sample: Float32Array, batch: number, height: number, width: number, t: number, context: Embeddings): Promise<Float32Array> {
    if (this.runner) return this.runner.predict(sample, batch, height, width, t, context, () => this.predictExported(sample, batch, height, width, t, context));
    return this.predictExported(sample, batch, height, width, t, context);
  }

  /** From now on `predict` goes through `runner` (which may release the exported UNet's session with {@link releaseUnet}). */
  useUnetRunner(runner: UnetRunner): void {
    this.runner = runner;
  }

  // the exported UNet's session, in chunks of its fixed batch if it has one (the last padded)
  private async predictExported(sample: Float32Array, batch: number, height: number, width: number, t: number, context: Embeddings): Promise<Float32Array> {
    const c = this.latentChannels;
    const st = unetStatics({ sample: this.unetSample, timestep: this.unetTimestep, encoderHiddenStates: this.unetContext });
    const per = c * height * width;
    const ctxPer = context.sequence * context.dim;
    const chunks = planRowChunks(new Array(batch).fill(t), { fixed: st.batch });
    return mapRowChunks(batch, per, chunks, async (ch) => {
      const n = ch.size;
      const feeds: Record<string, ort.Tensor> = {
        [this.unetSample.name]: tensorFor(this.unetSample, gatherRows(sample, per, ch), [n, c, height, width]),
        [this.unetTimestep.name]: st.scalarTimestep ? tensorFor(this.unetTimestep, [t], []) : tensorFor(this.unetTimestep, new Array(n).fill(t), [n]),
        [this.unetContext.name]: tensorFor(this.unetContext, gatherRows(context.data, ctxPer, ch), [n, context.sequence, context.dim]),
      };
      if (this.unetAdded) {
        const pooled = pooledOf(context, this.unetAdded.textEmbeds.name);
        feeds[this.unetAdded.textEmbeds.name] = tensorFor(this.unetAdded.textEmbeds, gatherRows(pooled, context.pooledDim!, ch), [n, context.pooledDim!]);
        feeds[this.unetAdded.timeIds.name] = tensorFor(this.unetAdded.timeIds, new Array(n).fill(sdxlTimeIds(height, width)).flat(), [n, 6]);
      }
      const out = await this.runUnet(feeds);
      // an output kept in a GPU buffer (unetOptions.preferredOutputLocation) is downloaded here
      return readFloat32(out[this.unetOutput.name]);
    });
  }

  /**
   * Runs the exported UNet. A fused com.microsoft kernel that turns out not to run on this provider (onnxruntime's CPU
   * MultiHeadAttention takes no packed k/v) is replaced once by the standard operators it lowers to, and the run repeated.
   */
  async runUnet(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    try {
      return await this.unet.run(feeds);
    } catch (e) {
      const op = /running (\w+) node[\s\S]*not implemented/i.exec((e as Error).message)?.[1];
      if (!op || !this.reopenLowered || this.unet.loweredOps) throw e;
      const lowered = await this.reopenLowered();
      await this.unetModel.release();
      this.unetModel = lowered;
      this.onWarning?.(`${lowered.path}: ${op} does not run on ${lowered.ep} as exported; it runs as standard ONNX operators (slower than on the provider it was optimised for)`);
      return this.unet.run(feeds);
    }
  }

  /** VAE-decodes latents `[batch, C, h, w]` (divided by the scaling factor first) -> images `[batch, 3, 8h, 8w]` in about [-1, 1]. */
  async decode(latents: Float32Array, batch: number, height: number, width: number): Promise<{ data: Float32Array; height: number; width: number }> {
    const c = this.latentChannels;
    const per = c * height * width;
    const parts: Float32Array[] = [];
    let dims: readonly number[] = [];
    // One image at a time keeps VAE memory bounded at 512 px and up; a decoder exported for a fixed batch gets it padded.
    const fixed = this.vaeDecoder.fixedBatch(this.vaeIn) ?? 1;
    for (let b = 0; b < batch; b++) {
      const scaled = new Float32Array(per);
      for (let i = 0; i < per; i++) scaled[i] = latents[b * per + i] / this.folder.vaeScalingFactor;
      const out = await this.vaeDecoder.run({ [this.vaeIn.name]: tensorFor(this.vaeIn, gatherRows(scaled, per, { rows: [0], size: fixed }), [fixed, c, height, width]) });
      const t = out[this.vaeOut.name];
      dims = t.dims;
      const img = tensorToFloat32(t);
      parts.push(fixed === 1 ? img : img.subarray(0, img.length / fixed));
    }
    return { data: concat(parts), height: dims[2], width: dims[3] };
  }

  /**
   * Frees the UNet's session but keeps its I/O metadata, for a caller that predicts with its own UNet session (the
   * DDPO policy's LoRA sampling graph): an SD 1.5 UNet is 3.4 GB that would otherwise stay loaded unused.
   */
  async releaseUnet(): Promise<void> {
    await this.unet.release();
  }

  /** Frees all sessions. */
  async release(): Promise<void> {
    const aux = await Promise.allSettled(this.aux.values());
    await Promise.all([this.text.release(), this.unet.release(), this.vaeDecoder.release(), this.runner?.release(),
      ...aux.map((r) => (r.status === 'fulfilled' ? r.value.release() : undefined))]);
  }
}

/**
 * Opens an ONNX file on `providers`; a model whose fused com.microsoft ops the provider has no kernel for (an export
 * optimised for CUDA, opened on the CPU) is read and opened with them lowered to standard operators instead.
 * `asked`: the provider list was built from one `ep` (OrtModel.load's error wording).
 */
async function openModelFile(file: string, providers: SessionProviders, extra: ort.InferenceSession.SessionOptions | undefined, asked: boolean): Promise<OrtModel> {
  try {
    return asked ? await OrtModel.load(file, providers.candidates[0], extra) : await OrtModel.open(file, providers, extra);
  } catch (e) {
    if (!missingKernel((e as Error).message)) throw e;
    const opened = await openModel(loadModel(file), { providers, extra, name: file });
    if (!opened.loweredOps) { await opened.session.release(); throw e; }
    return wrapLowered(file, opened);
  }
}

function wrapLowered(file: string, opened: OpenedModel): OrtModel {
  return OrtModel.wrap(opened.session, file, opened.ep, opened.loweredOps ?? []);
}

/** The pooled text embedding an SDXL UNet's `text_embeds` takes; the embeddings must carry it. */
export function pooledOf(context: Embeddings, input: string): Float32Array {
  if (!context.pooled || !context.pooledDim) throw new Error(`the UNet takes ${input} (SDXL's pooled text embedding), but the text embeddings given carry none; encode the prompts with this pipeline`);
  return context.pooled;
}
