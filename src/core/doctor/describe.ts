/** What a UNet export is, read from its graph alone: family, exporter, fixed shapes, fused ops, precision, LoRA targets. */
import { DataType, elemBytes, numel, onnxOpset, type Model, type Node } from '../onnx/ir';
import { unetRoles, unetStatics, type UnetRoles } from '../diffusion/unetRoles';
import type { DdimConfig } from '../diffusion/ddim';
import { findLoraTargets, type LoraTarget } from '../train/loraTargets';
import { kohyaModuleName, layersPerBlockOf, peftKey } from '../train/loraFile';

/** One labelled line of the report. */
export interface Fact {
  label: string;
  value: string;
}

/** Inputs beyond sample, timestep and text embeddings: SDXL's added conditioning (text_embeds, time_ids) and the like. */
export function extraUnetInputs(model: Model, roles: UnetRoles = unetRoles(model)): string[] {
  const used = new Set([roles.sample.name, roles.timestep.name, roles.encoderHiddenStates.name]);
  return model.graph.inputs.filter((v) => !used.has(v.name) && !model.graph.initializers.has(v.name)).map((v) => v.name);
}

/** The family a UNet belongs to, from its cross-attention width and its added conditioning. */
export function unetFamily(model: Model, prediction?: DdimConfig['predictionType']): string {
  const roles = unetRoles(model);
  const dim = roles.encoderHiddenStates.shape?.[2];
  const extra = extraUnetInputs(model, roles);
  const why = `cross-attention ${typeof dim === 'number' ? dim : 'of unknown width'}${extra.length ? `, added conditioning ${extra.join(', ')}` : ''}`;
  if (extra.some((n) => /text_embeds|time_ids/.test(n)) || dim === 2048) return `SDXL-class (${why})`;
  if (dim === 768) return `SD 1.x (${why})`;
  if (dim === 1024) return `SD 2.x${prediction === 'v_prediction' ? ' 768-v' : ''} (${why})`;
  return `a custom Stable Diffusion UNet (${why})`;
}

/** Who wrote the graph and how: producer, opset, node naming, and the ops that tell exporters apart. */
export function exporterOf(model: Model): string {
  const nodes = model.graph.nodes;
  const scoped = nodes.filter((n) => /^\/[^/]+\/.+/.test(n.name)).length;
  const naming = nodes.length && scoped / nodes.length > 0.5 ? 'module-scoped node names (TorchScript exporter)' : 'anonymous node names (dynamo exporter, or names stripped)';
  const producer = [model.producerName, model.producerVersion].filter(Boolean).join(' ') || 'unknown producer';
  const telling = ['LayerNormalization', 'GroupNormalization', 'InstanceNormalization', 'Gelu', 'Einsum'].map((op) => [op, count(nodes, (n) => n.opType === op && !n.domain)] as const)
    .filter(([, k]) => k > 0).map(([op, k]) => `${op} ×${k}`);
  const splitSizes = count(nodes, (n) => n.opType === 'Split' && !!n.inputs[1]);
  if (splitSizes) telling.push(`Split with sizes ×${splitSizes}`);
  return `${producer}, opset ${onnxOpset(model)}, ${naming}${telling.length ? `; ${telling.join(', ')}` : ''}`;
}

/** What the export fixes: batch, latent size, text length, and how it takes its timestep. */
export function fixedShapes(model: Model): string {
  const roles = unetRoles(model);
  const st = unetStatics(roles);
  const t = roles.timestep;
  const tType = DataType[t.elemType]?.toLowerCase() ?? 'unknown';
  return [
    st.batch === undefined ? 'batch free' : `batch fixed at ${st.batch}`,
    st.height === undefined ? 'latents free' : `latents fixed at ${st.height}x${st.width ?? '?'}`,
    st.sequence === undefined ? 'text length free' : `text length fixed at ${st.sequence}`,
    st.scalarTimestep ? `one ${tType} scalar timestep for the whole batch` : `${tType} timestep per row`,
  ].join(', ');
}

/** Operators outside the ONNX standard (onnxruntime's com.microsoft fusions), by type. */
export function fusedOps(model: Model): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of model.graph.nodes) if (n.domain && n.domain !== 'ai.onnx') out.set(`${n.domain}.${n.opType}`, (out.get(`${n.domain}.${n.opType}`) ?? 0) + 1);
  return out;
}

/** The weights' float type(s) and their size. */
export function precisionOf(model: Model): string {
  const bytes = new Map<DataType, number>();
  for (const t of model.graph.initializers.values()) {
    if (t.dataType !== DataType.FLOAT && t.dataType !== DataType.FLOAT16) continue;
    bytes.set(t.dataType, (bytes.get(t.dataType) ?? 0) + numel(t.dims) * elemBytes(t.dataType));
  }
  const total = [...bytes.values()].reduce((a, b) => a + b, 0);
  const kinds = [...bytes].sort((a, b) => b[1] - a[1]).map(([dt, b]) => `${dt === DataType.FLOAT16 ? 'float16' : 'float32'} ${Math.round((100 * b) / total)}%`);
  const io = unetRoles(model).sample.elemType === DataType.FLOAT16 ? 'float16' : 'float32';
  const size = total >= 2 ** 30 ? `${(total / 2 ** 30).toFixed(2)} GiB` : `${(total / 2 ** 20).toFixed(1)} MiB`;
  return `weights ${kinds.join(', ') || 'none'} (${size}), ${io} inputs`;
}

/** The LoRA target layers grouped by UNet block, with how they were found and the names they get. */
export function describeLoraTargets(model: Model, targets?: string[]): { value: string; targets: LoraTarget[]; detection: 'scope' | 'structure' } {
  const found = findLoraTargets(model, { targets });
  let byScope: LoraTarget[] = [];
  try { byScope = findLoraTargets(model, { targets, detection: 'scope' }); } catch { /* no names: found by structure */ }
  const detection = byScope.length === found.length ? 'scope' : 'structure';
  const blocks = new Map<string, number>();
  for (const t of found) { const b = blockOf(t.module); blocks.set(b, (blocks.get(b) ?? 0) + 1); }
  const first = found[0].module;
  const how = detection === 'scope' ? 'by node names' : 'by graph structure (the export has no module names)';
  const per = [...blocks].map(([b, k]) => `${b} ${k}`).join(', ');
  const naming = unetRoles(model).added ? 'sgm' : 'diffusers';
  const kohya = kohyaModuleName(first, naming, layersPerBlockOf(found.map((t) => t.module)));
  return { targets: found, detection, value: `${found.length} layers found ${how}: ${per}; e.g. PEFT unet.${peftKey(first, 'A')}, kohya ${kohya}.lora_down.weight${naming === 'sgm' ? ' (SDXL: the SGM UNet\'s block names)' : ''}` };
}

// `down_blocks.1`, `mid_block`, `up_blocks.2` (diffusers' block names) of a module path
function blockOf(module: string): string {
  const s = module.split('.');
  return s[0] === 'mid_block' ? 'mid_block' : /_blocks$/.test(s[0]) ? `${s[0]}.${s[1]}` : s[0];
}

function count(nodes: Node[], pred: (n: Node) => boolean): number {
  let k = 0;
  for (const n of nodes) if (pred(n)) k++;
  return k;
}
