/** Shape specialization: fix free input dims, fold the shape arithmetic exporters emit, annotate every tensor. */
import { Dim, Model, cloneModel, onnxOpset } from './ir';
import { foldConstants } from './fold';
import { AnalyzeOptions, TensorShape, inferShapes } from './shapes';

export interface SpecializeOptions extends AnalyzeOptions {
  /** Values for symbolic dims by name, e.g. `{ batch: 2, height: 16, width: 16, sequence: 77 }`. */
  dims?: Record<string, number>;
  /** Full shapes per input name; override `dims` for that input. */
  inputShapes?: Record<string, number[]>;
}

export interface SpecializeResult {
  model: Model;
  /** Static shape and type of every tensor of the specialized model. */
  shapes: Map<string, TensorShape>;
  nodesBefore: number;
  nodesAfter: number;
}

/** Returns a specialized copy of `model` (initializer data is shared, never copied); the input model is not changed. */
export function specialize(model: Model, opts: SpecializeOptions): SpecializeResult {
  const m = cloneModel(model);
  const g = m.graph;
  const opset = onnxOpset(m);
  const nodesBefore = g.nodes.length;
  const unknown = Object.keys(opts.inputShapes ?? {}).filter((k) => !g.inputs.some((v) => v.name === k));
  if (unknown.length) throw new Error(`specialize: no graph input named ${unknown.join(', ')} (inputs: ${g.inputs.map((v) => v.name).join(', ')})`);
  for (const v of g.inputs) v.shape = fixInputShape(v.name, v.shape, opts);

  // folding is one topological pass, so a second pass only confirms the fixed point
  for (let i = 0; i < 4; i++) {
    const r = foldConstants(g, opset, opts);
    if (r.folded === 0 && r.removed === 0) break;
  }
  const shapes = inferShapes(g, opset, opts);
  const io = new Set([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const o of g.outputs) { const s = shapes.get(o.name)!; o.elemType = s.elemType; o.shape = [...s.dims]; }
  const outs = new Set(g.outputs.map((o) => o.name));
  g.valueInfo = [];
  for (const n of g.nodes) {
    for (const o of n.outputs) {
      if (!o || io.has(o) || outs.has(o)) continue;
      const s = shapes.get(o)!;
      g.valueInfo.push({ name: o, elemType: s.elemType, shape: [...s.dims] });
    }
  }
  return { model: m, shapes, nodesBefore, nodesAfter: g.nodes.length };
}

function fixInputShape(name: string, shape: Dim[] | null, opts: SpecializeOptions): number[] {
  const given = opts.inputShapes?.[name];
  if (given) {
    if (shape && shape.length !== given.length) throw new Error(`specialize: input "${name}" has rank ${shape.length} but inputShapes gives [${given}]`);
    shape?.forEach((d, i) => {
      if (typeof d === 'number' && d >= 0 && d !== given[i]) throw new Error(`specialize: input "${name}" dim ${i} is fixed to ${d} in the model but inputShapes gives ${given[i]}`);
    });
    return [...given];
  }
  if (!shape) throw new Error(`specialize: input "${name}" has no shape in the model; pass inputShapes.${name}`);
  return shape.map((d, i) => {
    if (typeof d === 'number' && d >= 0) return d;
    const v = typeof d === 'string' ? opts.dims?.[d] : undefined;
    if (v === undefined) {
      throw new Error(`specialize: input "${name}" dim ${i} (${d === null ? 'unnamed' : `"${d}"`}) is free; pass ` +
        `${typeof d === 'string' ? `dims.${d} or ` : ''}inputShapes.${name}`);
    }
    return v;
  });
}
