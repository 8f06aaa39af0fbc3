/** Finds the linear layers a LoRA adapts, by exporter node scopes or, without them, by UNet structure. */
import { Model, Node } from '../onnx/ir';
import { GraphIndex, LinearLayer, linearLayerOf } from './graphIndex';
import { findAttentions, AttentionSite } from './attentionPattern';
import { findUnetInputs } from '../diffusion/unetRoles';

/** The attention projections PEFT/diffusers LoRAs adapt by default. */
export const DEFAULT_LORA_TARGETS = ['to_q', 'to_k', 'to_v', 'to_out.0'];

/** One adapted layer, named the way diffusers/PEFT names the module. */
export interface LoraTarget extends LinearLayer {
  /** Module path, e.g. `down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`. */
  module: string;
}

export type LoraDetection = 'auto' | 'scope' | 'structure';

/** Options for {@link findLoraTargets}. */
export interface FindTargetsOptions {
  /** Module-name suffixes to adapt (default {@link DEFAULT_LORA_TARGETS}). */
  targets?: string[];
  /** `auto` uses node scopes when the export kept them, else structure. */
  detection?: LoraDetection;
}

/** Lists LoRA targets in graph order; throws with advice when none are found. */
export function findLoraTargets(model: Model, opts: FindTargetsOptions = {}): LoraTarget[] {
  const targets = opts.targets ?? DEFAULT_LORA_TARGETS;
  const detection = opts.detection ?? 'auto';
  const index = new GraphIndex(model.graph);
  let found: LoraTarget[] = [];
  if (detection !== 'structure') found = targetsByScope(index, targets);
  if (detection === 'structure') found = targetsByStructure(index, targets);
  else if (detection === 'auto') found = moreOf(found, index, targets);
  if (!found.length) {
    throw new Error(`no LoRA target layers (${targets.join(', ')}) found in the ONNX graph ${model.graph.name || ''} (detection: ${detection}): ` +
      `${whatIsThereInstead(index, targets)}. LoRA needs MatMul or Gemm linear layers with a constant 2-D weight: ${REEXPORT_LINEAR}`);
  }
  const seen = new Set<string>();
  for (const t of found) {
    if (seen.has(t.module)) throw new Error(`two layers map to the LoRA module ${t.module} (node ${t.node.name}); the export's node names are ambiguous, try detection 'structure'`);
    seen.add(t.module);
  }
  return found.sort((a, b) => index.position.get(a.node)! - index.position.get(b.node)!);
}

// Names can cover part of a graph only (a fused export whose split-out projections carry no module scope): then the
// structure, which sees every attention, finds more layers and its names are taken.
function moreOf(byScope: LoraTarget[], index: GraphIndex, targets: string[]): LoraTarget[] {
  let byStructure: LoraTarget[] = [];
  try { byStructure = targetsByStructure(index, targets); } catch (e) { if (!byScope.length) throw e; }
  return byStructure.length > byScope.length ? byStructure : byScope;
}

const REEXPORT_LINEAR = 're-export the UNet from diffusers with optimum-cli export onnx (or torch.onnx.export), which keeps nn.Linear as MatMul/Gemm and the module names in the node names';

/** Ops that apply a weight to the hidden state; the ones that are not MatMul/Gemm are why no linear layer is found. */
const WEIGHT_OPS = new Set(['MatMul', 'Gemm', 'Einsum', 'MatMulInteger', 'QLinearMatMul', 'FusedMatMul', 'MatMulNBits', 'DynamicQuantizeMatMul', 'Conv']);

// The real cause when no target is found: what the layers named like the targets are, or what the graph has at all.
function whatIsThereInstead(index: GraphIndex, targets: string[]): string {
  const strip = wrapperPrefix(index.graph.nodes);
  const named = index.graph.nodes.filter((n) => {
    const module = scopeSegments(n.name)?.slice(strip).join('.');
    return module !== undefined && targets.some((t) => module === t || module.endsWith(`.${t}`)) && WEIGHT_OPS.has(n.opType);
  });
  if (named.length) return `the layers named ${targets.join('/')} are ${describeWeightOps(index, named)}`;
  // MatMuls that are not linear layers (attention scores) say nothing about why the projections were missed
  const all = index.graph.nodes.filter((n) => WEIGHT_OPS.has(n.opType) && n.opType !== 'Conv' && (!['MatMul', 'Gemm'].includes(n.opType) || linearLayerOf(index, n)));
  const softmax = index.graph.nodes.filter((n) => n.opType === 'Softmax').length;
  return `no node is named for these layers and no attention block (q/k/v projections -> Softmax -> out projection) was recognised; ` +
    `the graph has ${all.length ? describeWeightOps(index, all) : 'no MatMul, Gemm or Einsum layers'} and ${softmax} Softmax node(s)`;
}

// "Einsum nodes (48 of them, e.g. "/.../to_q/Einsum")", MatMuls whose weight is not a constant named by its producer.
function describeWeightOps(index: GraphIndex, nodes: Node[]): string {
  const groups = new Map<string, Node[]>();
  for (const n of nodes) {
    const linear = linearLayerOf(index, n);
    const source = index.producer.get(n.inputs[1] ?? '')?.opType;
    const key = linear ? `${n.opType} linear layers` : n.opType === 'MatMul' || n.opType === 'Gemm'
      ? `${n.opType} nodes whose weight is ${source ? `computed by ${source}` : 'a graph input or not 2-D'}, not a constant 2-D initializer`
      : `${n.opType} nodes`;
    const group = groups.get(key);
    if (group) group.push(n); else groups.set(key, [n]);
  }
  return [...groups].sort((a, b) => b[1].length - a[1].length)
    .map(([what, ns]) => `${what} (${ns.length} of them, e.g. "${ns[0].name || ns[0].outputs[0]}")`).join(', ');
}

/** Module path segments of a scoped node name (`/u/down_blocks.0/attn1/to_q/MatMul` -> [u, down_blocks.0, attn1, to_q]). */
function scopeSegments(name: string): string[] | undefined {
  if (!name.startsWith('/')) return undefined;
  const parts = name.split('/').filter(Boolean);
  return parts.length >= 2 ? parts.slice(0, -1) : undefined;
}

/**
 * How many leading scope segments name a wrapper around the model (e.g. `u` when the exporter wrapped the
 * UNet as `self.u`): the common prefix of all scoped nodes, if the model's own ops sit directly in it.
 */
function wrapperPrefix(nodes: Node[]): number {
  let common: string[] | undefined;
  const all: string[][] = [];
  for (const n of nodes) {
    const segs = scopeSegments(n.name);
    if (!segs) continue;
    all.push(segs);
    if (!common) { common = segs; continue; }
    let k = 0;
    while (k < common.length && k < segs.length && common[k] === segs[k]) k++;
    common = common.slice(0, k);
  }
  const k = common?.length ?? 0;
  // `down_blocks.0` style segments are real module paths, never a wrapper
  if (!k || common!.some((s) => s.includes('.')) || !all.some((segs) => segs.length === k)) return 0;
  return k;
}

function targetsByScope(index: GraphIndex, targets: string[]): LoraTarget[] {
  const strip = wrapperPrefix(index.graph.nodes);
  const out: LoraTarget[] = [];
  for (const node of index.graph.nodes) {
    const segs = scopeSegments(node.name);
    if (!segs) continue;
    const module = segs.slice(strip).join('.');
    if (!targets.some((t) => module === t || module.endsWith(`.${t}`))) continue;
    const layer = linearLayerOf(index, node);
    if (layer) out.push({ ...layer, module });
  }
  return out;
}

/** Where an attention sits in the UNet: `down_blocks.1`, `mid_block`, `up_blocks.2`. */
interface BlockPlace { block: string; slot: number }

function targetsByStructure(index: GraphIndex, targets: string[]): LoraTarget[] {
  const known = new Set(['to_q', 'to_k', 'to_v', 'to_out.0']);
  const unknown = targets.filter((t) => !known.has(t));
  if (unknown.length) {
    throw new Error(`LoRA targets ${unknown.join(', ')} can only be found by node scope names, and this export has none; ` +
      `use ${[...known].join(', ')} or re-export with node names kept`);
  }
  const sites = findAttentions(index);
  if (!sites.length) return [];
  const places = placeAttentions(index, sites);
  const out: LoraTarget[] = [];
  const perSlot = new Map<string, number>();
  sites.forEach((site, k) => {
    const { block, slot } = places[k];
    const key = `${block}.attentions.${slot}`;
    // each transformer block is a self-attention (attn1) followed by a cross-attention (attn2)
    let tb = perSlot.get(key) ?? -1;
    if (site.selfAttention || tb < 0) tb += 1;
    perSlot.set(key, tb);
    const prefix = `${key}.transformer_blocks.${tb}.attn${site.selfAttention ? 1 : 2}`;
    const roles: Array<[string, LinearLayer]> = [['to_q', site.q], ['to_k', site.k], ['to_v', site.v]];
    if (site.out) roles.push(['to_out.0', site.out]);
    for (const [role, layer] of roles) if (targets.includes(role)) out.push({ ...layer, module: `${prefix}.${role}` });
  });
  return out;
}

/**
 * Places attentions in diffusers' UNet2DConditionModel layout by walking the graph in order and counting
 * resnets (where the time embedding meets the sample), downsamplers (strided Conv/Pool) and upsamplers (Resize).
 */
function placeAttentions(index: GraphIndex, sites: AttentionSite[]): BlockPlace[] {
  const inputs = index.graph.inputs;
  const { sample, timestep: time } = findUnetInputs(inputs);
  if (!sample || !time) throw new Error(`cannot find the UNet's sample and timestep inputs (${inputs.map((v) => v.name).join(', ')}) to place attention blocks; re-export with node names kept`);
  const dep = index.dependence([sample.name, time.name]);
  const S = 1, T = 2;
  type Ev = 'R' | 'D' | 'U' | number;
  const events: Ev[] = [];
  const siteAt = new Map<Node, number>();
  sites.forEach((s, k) => siteAt.set(s.softmax, k));
  for (const n of index.order) {
    const masks = n.inputs.map((i) => dep.get(i) ?? 0);
    const onSample = masks.some((m) => m & S);
    if (siteAt.has(n)) events.push(siteAt.get(n)!);
    else if (onSample && masks.some((m) => (m & T) && !(m & S))) events.push('R');
    else if (onSample && isDownsample(n)) events.push('D');
    else if (onSample && (n.opType === 'Resize' || n.opType === 'Upsample')) events.push('U');
  }
  const downs = events.filter((e) => e === 'D').length;
  const firstD = events.indexOf('D');
  if (firstD < 0) throw new Error('cannot place attention blocks: the UNet has no downsampler to count blocks by; re-export with node names kept');
  const layers = events.slice(0, firstD).filter((e) => e === 'R').length;
  let phase: 'down' | 'mid' | 'up' = 'down';
  let block = 0, res = 0;
  const places: BlockPlace[] = new Array(sites.length);
  for (const e of events) {
    if (e === 'R') {
      if (phase === 'down' && block === downs && res === layers) { phase = 'mid'; res = 1; }
      else if (phase === 'mid' && res === 2) { phase = 'up'; block = 0; res = 1; }
      else res += 1;
    } else if (e === 'D') { if (phase === 'down') { block += 1; res = 0; } }
    else if (e === 'U') { if (phase === 'up') { block += 1; res = 0; } }
    else {
      const name = phase === 'mid' ? 'mid_block' : `${phase}_blocks.${block}`;
      places[e] = { block: name, slot: Math.max(0, res - 1) };
    }
  }
  return places;
}

function isDownsample(n: Node): boolean {
  if (!['Conv', 'AveragePool', 'MaxPool'].includes(n.opType)) return false;
  const s = n.attrs.strides;
  return !!s && s.type === 'ints' && s.value.some((v) => v > 1);
}
