/**
 * LoRA files: one adapter in memory, and the two namings other tools load. diffusers/PEFT naming
 * (`unet.<module>.lora_A.weight`, what `pipe.load_lora_weights` reads) and kohya naming
 * (`lora_unet_<module_with_underscores>.lora_down.weight` plus `.alpha`, what Automatic1111 and ComfyUI read).
 */
import { SafeTensor, encodeSafetensors, readSafetensorsWithMetadata, toFloat32 } from '../safetensors';
import { readWeightsFile } from '../torchLoad';

/** One adapted module: y += (alpha/rank)·x·Aᵀ·Bᵀ, A [rank, in], B [out, rank] (PEFT layout). */
export interface LoraModule {
  inFeatures: number;
  outFeatures: number;
  A: Float32Array;
  B: Float32Array;
}

/** A whole adapter; modules keyed by diffusers module path without a `unet.` prefix (`down_blocks.0....attn1.to_q`). */
export interface LoraWeights {
  rank: number;
  alpha: number;
  modules: Map<string, LoraModule>;
  /** How its kohya file names the modules (default diffusers'; SDXL LoRAs use the SGM UNet's). */
  kohyaNaming?: KohyaNaming;
}

/**
 * kohya's module naming of a model family: diffusers' paths (SD 1.x/2.x LoRAs), or the original SGM UNet's that
 * Automatic1111, ComfyUI and diffusers read SDXL LoRAs by (`input_blocks.4.1.transformer_blocks.0.attn1.to_q`).
 */
export type KohyaNaming = 'diffusers' | 'sgm';

/** The two namings of a LoRA file. */
export type LoraFormat = 'peft' | 'kohya';

/** PEFT key of a module's A or B matrix. */
export function peftKey(module: string, which: 'A' | 'B'): string {
  return `${module}.lora_${which}.weight`;
}

/**
 * kohya name of a module: `lora_unet_` + its path with dots turned into underscores (`lora_unet_down_blocks_0_..._to_q`);
 * under SGM naming an attention's path is the SGM UNet's (`down_blocks.i.attentions.j` -> `input_blocks.{i(L+1)+j+1}.1`,
 * `mid_block.attentions.0` -> `middle_block.1`, `up_blocks.i.attentions.j` -> `output_blocks.{i(L+1)+j}.1`, L the
 * resnets per down block); other modules keep diffusers' path.
 */
export function kohyaModuleName(module: string, naming: KohyaNaming = 'diffusers', layersPerBlock = 2): string {
  let path = module;
  if (naming === 'sgm') {
    const L = layersPerBlock;
    path = module
      .replace(/^down_blocks\.(\d+)\.attentions\.(\d+)\./, (_, i, j) => `input_blocks.${Number(i) * (L + 1) + Number(j) + 1}.1.`)
      .replace(/^mid_block\.attentions\.0\./, 'middle_block.1.')
      .replace(/^up_blocks\.(\d+)\.attentions\.(\d+)\./, (_, i, j) => `output_blocks.${Number(i) * (L + 1) + Number(j)}.1.`);
  }
  return `lora_unet_${path.replace(/\./g, '_')}`;
}

/** Resnets per down block as the modules show it: one more than the highest attention index of any down block (2 when none). */
export function layersPerBlockOf(modules: Iterable<string>): number {
  let most = -1;
  for (const m of modules) { const j = /^down_blocks\.\d+\.attentions\.(\d+)\./.exec(m)?.[1]; if (j !== undefined) most = Math.max(most, Number(j)); }
  return most < 0 ? 2 : most + 1;
}

/** The scale applied to B·A. */
export function loraScale(w: Pick<LoraWeights, 'rank' | 'alpha'>): number {
  return w.alpha / w.rank;
}

/**
 * A .safetensors file in `format` naming. PEFT: loaders that ignore alpha assume alpha = rank, so the scale alpha/rank
 * is folded into lora_B and the file means the same thing everywhere. kohya: lora_down = A, lora_up = B, and a scalar
 * alpha per module.
 */
export function encodeLora(w: LoraWeights, format: LoraFormat): Uint8Array {
  const { tensors, metadata } = format === 'kohya' ? kohyaTensors(w) : peftTensors(w);
  return encodeSafetensors(tensors, metadata);
}

function peftTensors(w: LoraWeights): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const scale = loraScale(w);
  const tensors = new Map<string, SafeTensor>();
  for (const [m, mod] of w.modules) {
    const B = scale === 1 ? mod.B : mod.B.map((v) => v * scale);
    tensors.set(`unet.${peftKey(m, 'A')}`, { dtype: 'F32', shape: [w.rank, mod.inFeatures], data: mod.A });
    tensors.set(`unet.${peftKey(m, 'B')}`, { dtype: 'F32', shape: [mod.outFeatures, w.rank], data: B });
  }
  const targets = [...new Set([...w.modules.keys()].map(targetSuffix))].sort();
  const adapter = { r: w.rank, lora_alpha: w.rank, target_modules: targets, init_lora_weights: 'gaussian' };
  return { tensors, metadata: { format: 'pt', lora_adapter_metadata: JSON.stringify({ unet: adapter }) } };
}

function kohyaTensors(w: LoraWeights): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const tensors = new Map<string, SafeTensor>();
  const layers = layersPerBlockOf(w.modules.keys());
  for (const [m, mod] of w.modules) {
    const k = kohyaModuleName(m, w.kohyaNaming, layers);
    tensors.set(`${k}.lora_down.weight`, { dtype: 'F32', shape: [w.rank, mod.inFeatures], data: mod.A });
    tensors.set(`${k}.lora_up.weight`, { dtype: 'F32', shape: [mod.outFeatures, w.rank], data: mod.B });
    tensors.set(`${k}.alpha`, { dtype: 'F32', shape: [], data: Float32Array.of(w.alpha) });
  }
  const metadata = { ss_network_module: 'networks.lora', ss_network_dim: String(w.rank), ss_network_alpha: String(w.alpha), ss_training_comment: 'DDPO Studio' };
  return { tensors, metadata };
}

/** The layer name PEFT's target_modules matches a module by: its last path segment, or the last two for `to_out.0`. */
export function targetSuffix(module: string): string {
  const parts = module.split('.');
  return /^\d+$/.test(parts[parts.length - 1]) ? parts.slice(-2).join('.') : parts[parts.length - 1];
}

/** Options for {@link readLora}. */
export interface ReadLoraOptions {
  /** Module paths of the model, used to resolve kohya's underscore names; required for kohya files. */
  modules?: string[];
  /** lora_alpha when a PEFT file carries no metadata (default: the rank, i.e. scale 1). */
  alpha?: number;
}

/** Reads a LoRA in either naming (a .pth/.pt path through the tensor-only PyTorch reader); detects the format from its keys. */
export function readLora(src: string | Uint8Array, opts: ReadLoraOptions = {}): LoraWeights & { format: LoraFormat } {
  const where = typeof src === 'string' ? src : 'LoRA buffer';
  const { tensors, metadata } = typeof src === 'string' ? readWeightsFile(src) : readSafetensorsWithMetadata(src);
  const keys = [...tensors.keys()];
  const kohya = keys.some((k) => k.endsWith('.lora_down.weight'));
  const parts = new Map<string, { A?: SafeTensor; B?: SafeTensor; alpha?: number }>();
  const entry = (m: string) => { let e = parts.get(m); if (!e) parts.set(m, (e = {})); return e; };
  // either naming resolves: diffusers' paths, or the SGM UNet's (SDXL LoRAs)
  const layers = layersPerBlockOf(opts.modules ?? []);
  const byKohya = new Map((opts.modules ?? []).flatMap((m) => [[kohyaModuleName(m, 'sgm', layers), m], [kohyaModuleName(m), m]]));
  for (const [key, t] of tensors) {
    if (kohya) {
      const m = /^(.*)\.(lora_down\.weight|lora_up\.weight|alpha)$/.exec(key);
      if (!m) continue;
      if (m[1].startsWith('lora_te')) throw new Error(`${where}: ${key} adapts the text encoder; only UNet LoRAs are supported`);
      const module = byKohya.get(m[1]);
      if (!module) throw new Error(`${where}: kohya key ${key} matches no adaptable layer of this model; check that the LoRA was trained for this UNet and its target layers`);
      const e = entry(module);
      if (m[2] === 'alpha') e.alpha = toFloat32(t)[0];
      else if (m[2] === 'lora_down.weight') e.A = t; else e.B = t;
    } else {
      const m = /^(?:base_model\.model\.)?(?:unet\.)?(.*)\.lora_([AB])(?:\.default)?\.weight$/.exec(key);
      if (!m) continue;
      const e = entry(m[1]);
      if (m[2] === 'A') e.A = t; else e.B = t;
    }
  }
  if (!parts.size) throw new Error(`${where} holds no LoRA weights (expected *.lora_A.weight/lora_B.weight or *.lora_down.weight/lora_up.weight keys)`);
  let rank = 0;
  const modules = new Map<string, LoraModule>();
  const metaAlpha = Number(metadata.lora_alpha ?? metadata.ss_network_alpha);
  let alpha = Number.isFinite(metaAlpha) && metaAlpha > 0 ? metaAlpha : opts.alpha;
  for (const [m, e] of parts) {
    if (!e.A || !e.B) throw new Error(`${where}: module ${m} has only one of its two LoRA matrices`);
    const [r, inF] = e.A.shape, [outF, r2] = e.B.shape;
    if (e.A.shape.length !== 2 || e.B.shape.length !== 2 || r !== r2) throw new Error(`${where}: module ${m} has mismatched LoRA shapes A ${JSON.stringify(e.A.shape)}, B ${JSON.stringify(e.B.shape)}`);
    if (rank && r !== rank) throw new Error(`${where}: module ${m} has rank ${r}, others ${rank}; mixed ranks are not supported`);
    rank = r;
    modules.set(m, { inFeatures: inF, outFeatures: outF, A: Float32Array.from(toFloat32(e.A)), B: Float32Array.from(toFloat32(e.B)) });
  }
  alpha ??= [...parts.values()].find((e) => e.alpha !== undefined)?.alpha ?? rank;
  // kohya stores alpha per module; fold any module's own alpha into its B so one scale serves all
  for (const [m, e] of parts) {
    if (e.alpha === undefined || e.alpha === alpha) continue;
    const B = modules.get(m)!.B, f = e.alpha / alpha;
    for (let i = 0; i < B.length; i++) B[i] *= f;
  }
  const sgm = kohya && keys.some((k) => /^lora_unet_(input|middle|output)_block/.test(k));
  return { rank, alpha, modules, format: kohya ? 'kohya' : 'peft', ...(sgm ? { kohyaNaming: 'sgm' as const } : {}) };
}
