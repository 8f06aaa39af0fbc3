/**
 * LoRA files other tools load: diffusers/PEFT naming (`unet.<module>.lora_A.weight`, what
 * `pipe.load_lora_weights` reads) and kohya naming (`lora_unet_<module_with_underscores>.lora_down.weight`
 * plus `.alpha`, what Automatic1111 and ComfyUI read).
 */
import type { SafeTensor } from '../safetensors';
import type { LoraWeights } from './types';

/** Target file formats of `ddpo export-lora`. */
export type LoraFormat = 'peft' | 'kohya';

const PEFT_KEY = /^(.+)\.lora_([AB])\.weight$/;

/** Groups PEFT names into modules: module path -> its A ([r, in]) and B ([out, r]) tensors. */
export function loraModules(lora: LoraWeights): Map<string, { A: SafeTensor; B: SafeTensor }> {
  const parts = new Map<string, { A?: SafeTensor; B?: SafeTensor }>();
  for (const [name, t] of lora.tensors) {
    const m = PEFT_KEY.exec(name);
    if (!m) throw new Error(`LoRA tensor "${name}" is not named <module>.lora_A.weight / <module>.lora_B.weight (PEFT naming)`);
    const entry = parts.get(m[1]) ?? {};
    entry[m[2] as 'A' | 'B'] = t;
    parts.set(m[1], entry);
  }
  const out = new Map<string, { A: SafeTensor; B: SafeTensor }>();
  for (const [mod, { A, B }] of [...parts].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!A || !B) throw new Error(`LoRA module "${mod}" has only lora_${A ? 'A' : 'B'}; both lora_A and lora_B are needed`);
    if (A.shape[0] !== lora.rank || B.shape[B.shape.length - 1] !== lora.rank) {
      throw new Error(`LoRA module "${mod}": shapes A[${A.shape}] B[${B.shape}] do not match rank ${lora.rank}`);
    }
    out.set(mod, { A, B });
  }
  return out;
}

/** Kohya module name: `lora_unet_` + the diffusers module path with dots turned into underscores. */
export function kohyaModuleName(peftModule: string): string {
  return 'lora_unet_' + peftModule.replace(/^unet\./, '').replace(/\./g, '_');
}

/**
 * Tensors in diffusers/PEFT naming. Loaders that ignore alpha assume alpha = rank, so the scale
 * alpha/rank is folded into lora_B: the file means the same thing everywhere.
 */
export function toPeftDiffusers(lora: LoraWeights): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const scale = lora.alpha / lora.rank;
  const tensors = new Map<string, SafeTensor>();
  const targets = new Set<string>();
  for (const [mod, { A, B }] of loraModules(lora)) {
    tensors.set(`unet.${mod}.lora_A.weight`, f32(A));
    tensors.set(`unet.${mod}.lora_B.weight`, scale === 1 ? f32(B) : scaled(B, scale));
    targets.add(mod.split('.').slice(-1)[0] === '0' ? mod.split('.').slice(-2).join('.') : mod.split('.').slice(-1)[0]);
  }
  const adapter = { r: lora.rank, lora_alpha: lora.rank, target_modules: [...targets].sort(), init_lora_weights: 'gaussian' };
  return { tensors, metadata: { format: 'pt', lora_adapter_metadata: JSON.stringify({ unet: adapter }) } };
}

/** Tensors in kohya naming: lora_down = A, lora_up = B, and a scalar alpha per module. */
export function toKohya(lora: LoraWeights): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const tensors = new Map<string, SafeTensor>();
  for (const [mod, { A, B }] of loraModules(lora)) {
    const k = kohyaModuleName(mod);
    tensors.set(`${k}.lora_down.weight`, f32(A));
    tensors.set(`${k}.lora_up.weight`, f32(B));
    tensors.set(`${k}.alpha`, { dtype: 'F32', shape: [], data: Float32Array.of(lora.alpha) });
  }
  return {
    tensors,
    metadata: { ss_network_module: 'networks.lora', ss_network_dim: String(lora.rank), ss_network_alpha: String(lora.alpha), ss_training_comment: 'DDPO Studio' },
  };
}

/** The tensors of `format`. */
export function loraFor(format: LoraFormat, lora: LoraWeights): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  return format === 'kohya' ? toKohya(lora) : toPeftDiffusers(lora);
}

function f32(t: SafeTensor): SafeTensor {
  if (t.dtype !== 'F32') throw new Error(`LoRA tensors must be float32 to export, got ${t.dtype}`);
  return { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(t.data as Float32Array) };
}

function scaled(t: SafeTensor, s: number): SafeTensor {
  const out = f32(t);
  const d = out.data as Float32Array;
  for (let i = 0; i < d.length; i++) d[i] *= s;
  return out;
}
