/** LoRA on an ONNX graph: adapters as graph inputs (for training), merging into weights (for sampling), PEFT init. */
import { DataType, Model, Node, cloneModel } from '../onnx/ir';
import { A, GraphBuilder } from '../onnx/builder';
import { FindTargetsOptions, LoraTarget, findLoraTargets } from './loraTargets';
import { LoraModule, LoraWeights, loraScale, peftKey, targetSuffix } from './loraFile';
import { mulberry32 } from '../random';
import { standardUnet } from './standardForm';

/** Rank, alpha and which layers to adapt. */
export interface LoraConfig extends FindTargetsOptions {
  rank: number;
  alpha: number;
}

/** One injected adapter and the graph inputs feeding it. */
export interface LoraAdapter {
  module: string;
  /** Graph input names: A [rank, in], B [out, rank]; equal to the PEFT keys. */
  inputA: string;
  inputB: string;
  inFeatures: number;
  outFeatures: number;
  /** The adapted MatMul/Gemm node. */
  node: string;
}

/** A model with LoRA inputs and the adapters it expects. */
export interface InjectedLora {
  model: Model;
  adapters: LoraAdapter[];
  rank: number;
  alpha: number;
}

/**
 * Adds y = x·W + (alpha/r)·((x·Aᵀ)·Bᵀ) at every target layer, with A and B as new graph inputs.
 * Works the same for MatMul (W [in,out]) and Gemm (any transB), since the delta is added to the layer output.
 */
export function injectLora(model: Model, cfg: LoraConfig): InjectedLora {
  if (!(cfg.rank >= 1) || !Number.isInteger(cfg.rank)) throw new Error(`LoRA rank must be a positive integer, got ${cfg.rank}`);
  const targets = findLoraTargets(model, cfg);
  const out = cloneModel(model);
  const g = out.graph;
  const original = model.graph.nodes;
  const b = new GraphBuilder(g);
  const inserted = new Map<number, Node[]>();
  const adapters: LoraAdapter[] = [];
  const scale = loraScale(cfg);
  for (const t of targets) {
    const k = original.indexOf(t.node);
    const node = g.nodes[k];
    const before = g.nodes.length;
    const y = node.outputs[0];
    const base = b.uniq(`${y}_base`);
    node.outputs[0] = base;
    const inputA = b.input(peftKey(t.module, 'A'), DataType.FLOAT, [cfg.rank, t.inFeatures]);
    const inputB = b.input(peftKey(t.module, 'B'), DataType.FLOAT, [t.outFeatures, cfg.rank]);
    b.within(`${LORA_SCOPE}/${t.module}`, () => {
      // Two Gemms with transB read A and B in their PEFT layout and carry the scale in alpha: no Transpose or Mul
      // nodes, and their gradients are Gemms too, so an adapter costs few kernels forward and backward.
      // A MatMul's activations ([batch, tokens, in]) are flattened to rows and the result takes the layer's shape;
      // a Gemm's are rows already.
      const x = node.inputs[0];
      const flat = node.opType !== 'Gemm';
      const rows = flat ? b.op('Reshape', [x, b.constI64([-1, t.inFeatures])]) : x;
      const down = b.op('Gemm', [rows, inputA], { transB: A.i(1) });
      const up = b.op('Gemm', [down, inputB], { transB: A.i(1), alpha: A.f(scale) });
      const delta = flat ? b.op('Reshape', [up, b.op('Shape', [base])]) : up;
      b.op('Add', [base, delta], {}, { outputs: [y] });
    });
    inserted.set(k, g.nodes.splice(before));
    adapters.push({ module: t.module, inputA, inputB, inFeatures: t.inFeatures, outFeatures: t.outFeatures, node: t.node.name });
  }
  // keep the node list topologically ordered: each adapter right after the layer it adapts
  const nodes: Node[] = [];
  g.nodes.forEach((n, k) => { nodes.push(n); const extra = inserted.get(k); if (extra) nodes.push(...extra); });
  g.nodes = nodes;
  return { model: out, adapters, rank: cfg.rank, alpha: cfg.alpha };
}

/** Node-name scope of the nodes {@link injectLora} adds (`/lora/<module>/...`). */
export const LORA_SCOPE = 'lora';

/**
 * The nodes of a LoRA-injected graph with the adapters switched off: each adapter's nodes are left out and its final
 * Add (base + delta) becomes an Identity of the base, so the layers compute exactly the model without LoRA.
 */
export function nodesWithoutLora(nodes: readonly Node[]): Node[] {
  const prefix = `/${LORA_SCOPE}/`;
  return nodes.flatMap((n) => {
    if (!n.name.startsWith(prefix)) return [n];
    // an adapter has one Add, base + delta (injectLora), whose first input is the layer's own output
    return n.opType === 'Add' ? [{ ...n, opType: 'Identity', inputs: [n.inputs[0]], attrs: {} }] : [];
  });
}

/**
 * Returns a copy of `exported` with W replaced by W + (alpha/r)·(B·A)ᵀ (MatMul) or W + (alpha/r)·B·A (Gemm transB),
 * in the standard form training used (train/standardForm.ts: fused ops lowered, float16 widened), where the layers are.
 */
export function mergeLora(exported: Model, weights: LoraWeights, opts: FindTargetsOptions = {}): Model {
  const model = standardUnet(exported).model;
  const targets = findLoraTargets(model, { ...opts, targets: opts.targets ?? [...new Set([...weights.modules.keys()].map(targetSuffix))] });
  const out = cloneModel(model);
  const byModule = new Map<string, LoraTarget>(targets.map((t) => [t.module, t]));
  const s = loraScale(weights);
  const namer = new GraphBuilder(out.graph);
  for (const [module, mod] of weights.modules) {
    const t = byModule.get(module);
    if (!t) throw new Error(`LoRA module ${module} matches no layer of the model; was the LoRA trained for this UNet?`);
    checkShapes(module, mod, t, weights.rank);
    // the node that reads the weight itself (the layer, or a Transpose/Identity before it), in the copy
    const reader = out.graph.nodes[model.graph.nodes.indexOf(t.weightSlot.node)];
    const W = Float32Array.from(t.weight.data as Float32Array);
    const { inFeatures: nin, outFeatures: nout } = t;
    const r = weights.rank;
    for (let o = 0; o < nout; o++) {
      for (let i = 0; i < nin; i++) {
        let acc = 0;
        for (let j = 0; j < r; j++) acc += mod.B[o * r + j] * mod.A[j * nin + i];
        W[t.transB ? o * nin + i : i * nout + o] += s * acc;
      }
    }
    const name = namer.uniq(`${module}.merged_weight`);
    out.graph.initializers.set(name, { ...t.weight, name, data: W });
    const old = reader.inputs[t.weightSlot.input];
    reader.inputs[t.weightSlot.input] = name;
    if (!out.graph.nodes.some((n) => n.inputs.includes(old))) out.graph.initializers.delete(old);
  }
  return out;
}

function checkShapes(module: string, mod: LoraModule, t: LoraTarget, rank: number): void {
  if (mod.inFeatures !== t.inFeatures || mod.outFeatures !== t.outFeatures || mod.A.length !== rank * t.inFeatures) {
    throw new Error(`LoRA module ${module} is ${mod.inFeatures}->${mod.outFeatures}, but layer ${t.node.name || t.module} is ${t.inFeatures}->${t.outFeatures}; the LoRA belongs to a different model`);
  }
}

/** PEFT initialisation: A ~ kaiming_uniform(a=√5) = U(±1/√in), B = 0; seeded and reproducible. */
export function initLoraWeights(adapters: LoraAdapter[], rank: number, alpha: number, seed = 0): LoraWeights {
  const rand = mulberry32(seed);
  const modules = new Map<string, LoraModule>();
  for (const a of adapters) {
    const bound = 1 / Math.sqrt(a.inFeatures);
    const A = new Float32Array(rank * a.inFeatures);
    for (let i = 0; i < A.length; i++) A[i] = (2 * rand() - 1) * bound;
    modules.set(a.module, { inFeatures: a.inFeatures, outFeatures: a.outFeatures, A, B: new Float32Array(a.outFeatures * rank) });
  }
  return { rank, alpha, modules };
}

/** Graph feeds for the adapters: input name -> [dims, data]. Throws when a module is missing. */
export function loraFeeds(adapters: LoraAdapter[], weights: LoraWeights): Map<string, { dims: number[]; data: Float32Array }> {
  const feeds = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const a of adapters) {
    const m = weights.modules.get(a.module);
    if (!m) throw new Error(`LoRA weights lack module ${a.module}; the adapter file does not cover this model's target layers`);
    if (m.inFeatures !== a.inFeatures || m.outFeatures !== a.outFeatures) throw new Error(`LoRA module ${a.module} is ${m.inFeatures}->${m.outFeatures}, the model's layer is ${a.inFeatures}->${a.outFeatures}`);
    feeds.set(a.inputA, { dims: [weights.rank, a.inFeatures], data: m.A });
    feeds.set(a.inputB, { dims: [a.outFeatures, weights.rank], data: m.B });
  }
  return feeds;
}

