/** LoRA weights in memory and in safetensors, with PEFT/diffusers and kohya key names. */
import * as fs from 'node:fs';
import { SafeTensor, encodeSafetensors, readSafetensorsWithMetadata, toFloat32 } from '../safetensors';

/** One adapted module: y += (alpha/rank)·x·Aᵀ·Bᵀ, A [rank, in], B [out, rank] (PEFT layout). */
export interface LoraModule {
  inFeatures: number;
  outFeatures: number;
  A: Float32Array;
  B: Float32Array;
}

/** A whole adapter; modules keyed by diffusers module path (`down_blocks.0....attn1.to_q`). */
export interface LoraWeights {
  rank: number;
  alpha: number;
  modules: Map<string, LoraModule>;
}

export type LoraFormat = 'peft' | 'kohya';

/** PEFT key of a module's A or B matrix. */
export function peftKey(module: string, which: 'A' | 'B'): string {
  return `${module}.lora_${which}.weight`;
}

/** kohya base name of a module (`lora_unet_down_blocks_0_..._to_q`). */
export function kohyaBase(module: string): string {
  return `lora_unet_${module.replace(/\./g, '_')}`;
}

/** The scale applied to B·A. */
export function loraScale(w: Pick<LoraWeights, 'rank' | 'alpha'>): number {
  return w.alpha / w.rank;
}

/** Serializes weights in PEFT (`lora_A/lora_B`) or kohya (`lora_down/lora_up/alpha`) naming. */
export function encodeLora(w: LoraWeights, format: LoraFormat = 'peft'): Uint8Array {
  const t = new Map<string, SafeTensor>();
  for (const [m, mod] of w.modules) {
    if (format === 'peft') {
      t.set(peftKey(m, 'A'), { dtype: 'F32', shape: [w.rank, mod.inFeatures], data: mod.A });
      t.set(peftKey(m, 'B'), { dtype: 'F32', shape: [mod.outFeatures, w.rank], data: mod.B });
    } else {
      const base = kohyaBase(m);
      t.set(`${base}.lora_down.weight`, { dtype: 'F32', shape: [w.rank, mod.inFeatures], data: mod.A });
      t.set(`${base}.lora_up.weight`, { dtype: 'F32', shape: [mod.outFeatures, w.rank], data: mod.B });
      t.set(`${base}.alpha`, { dtype: 'F32', shape: [], data: Float32Array.of(w.alpha) });
    }
  }
  const meta: Record<string, string> = format === 'peft'
    ? { format: 'peft', r: String(w.rank), lora_alpha: String(w.alpha) }
    : { ss_network_module: 'networks.lora', ss_network_dim: String(w.rank), ss_network_alpha: String(w.alpha) };
  return encodeSafetensors(t, meta);
}

/** Writes weights to a .safetensors file. */
export function writeLora(file: string, w: LoraWeights, format: LoraFormat = 'peft'): void {
  fs.writeFileSync(file, encodeLora(w, format));
}

/** Options for {@link readLora}. */
export interface ReadLoraOptions {
  /** Module paths of the model, used to resolve kohya's underscore names; required for kohya files. */
  modules?: string[];
  /** lora_alpha when a PEFT file carries no metadata (default: the rank, i.e. scale 1). */
  alpha?: number;
}

/** Reads a LoRA in either naming; detects the format from its keys. */
export function readLora(src: string | Uint8Array, opts: ReadLoraOptions = {}): LoraWeights & { format: LoraFormat } {
  const where = typeof src === 'string' ? src : 'LoRA buffer';
  const { tensors, metadata } = readSafetensorsWithMetadata(src);
  const keys = [...tensors.keys()];
  const kohya = keys.some((k) => k.endsWith('.lora_down.weight'));
  const parts = new Map<string, { A?: SafeTensor; B?: SafeTensor; alpha?: number }>();
  const entry = (m: string) => { let e = parts.get(m); if (!e) parts.set(m, (e = {})); return e; };
  const byKohya = new Map((opts.modules ?? []).map((m) => [kohyaBase(m), m]));
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
  return { rank, alpha, modules, format: kohya ? 'kohya' : 'peft' };
}
