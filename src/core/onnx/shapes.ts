/** Static shape and dtype inference for every tensor of a graph whose inputs have fixed dims. */
import { Graph, Node, numel, topoSort } from './ir';
import { EVAL_RULES, arrOf, tensorOf } from './evalOps';
import { MATH_RULES, ShapeCtx, ShapeRule } from './shapeRules';
import { TENSOR_RULES } from './shapeRulesTensor';
import { TensorInfo, TensorShape, where } from './shapeUtil';

export type { TensorInfo, TensorShape } from './shapeUtil';

/** Shape rules by op type (default ONNX domain). */
export const SHAPE_RULES: Record<string, ShapeRule> = { ...MATH_RULES, ...TENSOR_RULES };

export interface AnalyzeOptions {
  /** Evaluate a node only when its inputs and outputs each have at most this many elements (default 65536). */
  maxFoldElements?: number;
  /** Tensors (e.g. trainable weights) whose values are never read by the evaluator. */
  preserve?: ReadonlySet<string>;
}

/** Static shapes (and small constant values) of every tensor: graph inputs, initializers and node outputs. */
export function analyzeGraph(graph: Graph, opset: number, opts: AnalyzeOptions = {}): Map<string, TensorInfo> {
  const limit = opts.maxFoldElements ?? 65536;
  const preserve = opts.preserve ?? new Set<string>();
  const infos = new Map<string, TensorInfo>();
  for (const v of graph.inputs) {
    if (!v.shape) throw new Error(`graph input "${v.name}" has no shape; give its dims when specializing`);
    const free = v.shape.findIndex((d) => typeof d !== 'number' || d < 0);
    if (free >= 0) throw new Error(`graph input "${v.name}" dim ${free} (${JSON.stringify(v.shape[free])}) is not fixed; pass it to specialize()`);
    infos.set(v.name, { elemType: v.elemType, dims: v.shape as number[] });
  }
  for (const [name, t] of graph.initializers) infos.set(name, preserve.has(name) ? { elemType: t.dataType, dims: t.dims } : { elemType: t.dataType, dims: t.dims, value: t });
  for (const node of topoSort(graph)) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') throw new Error(`${where(node)}: op domain "${node.domain}" is not supported by shape inference`);
    const rule = SHAPE_RULES[node.opType];
    if (!rule) throw new Error(`${where(node)}: no shape rule for op "${node.opType}"; add one in src/core/onnx/shapeRules*.ts`);
    const inputs = node.inputs.map((name) => {
      if (!name) return undefined;
      const info = infos.get(name);
      if (!info) throw new Error(`${where(node)} reads "${name}", which no node, graph input or initializer produces`);
      return info;
    });
    const ctx = makeCtx(node, opset, inputs);
    const shapes = rule(ctx);
    const values = evaluate(node, ctx, inputs, shapes, limit);
    node.outputs.forEach((o, k) => {
      if (!o) return;
      if (!shapes[k]) throw new Error(`${where(node)}: shape rule gave no shape for output ${k} ("${o}")`);
      const info: TensorInfo = { elemType: shapes[k].elemType, dims: shapes[k].dims };
      if (values) info.value = values[k];
      infos.set(o, info);
    });
  }
  return infos;
}

/** Static shape and element type of every tensor (graph inputs must have fixed dims). */
export function inferShapes(graph: Graph, opset: number, opts: AnalyzeOptions = {}): Map<string, TensorShape> {
  const out = new Map<string, TensorShape>();
  for (const [k, v] of analyzeGraph(graph, opset, opts)) out.set(k, { elemType: v.elemType, dims: v.dims });
  return out;
}

/** Ops whose output holds the input's elements in the same order: folded by sharing the data, not copying it. */
const VIEW_OPS = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

/** Values of the node's outputs when every input is a small known constant and an evaluator exists. */
function evaluate(node: Node, ctx: ShapeCtx, inputs: Array<TensorInfo | undefined>, shapes: TensorShape[], limit: number) {
  const rule = EVAL_RULES[node.opType];
  if (!rule) return undefined;
  if (node.opType === 'Constant') {
    // free: the attribute tensor is reused as is, whatever its size
    return [ctx.node.attrs.value?.type === 'tensor' ? { ...ctx.node.attrs.value.value, name: node.outputs[0] } : tensorOf(node.outputs[0], shapes[0].elemType, shapes[0].dims, rule([], ctx, shapes)[0])];
  }
  const needsData = node.opType !== 'Shape' && node.opType !== 'Size';
  if (needsData && inputs.some((x) => x && (!x.value || numel(x.dims) > limit))) return undefined;
  if (shapes.some((s) => numel(s.dims) > limit)) return undefined;
  if (VIEW_OPS.has(node.opType)) return [{ ...inputs[0]!.value!, name: node.outputs[0], dims: shapes[0].dims }];
  const arrs = inputs.map((x) => (x && x.value && needsData ? arrOf(x.value) : x ? { dims: x.dims, v: [] } : undefined));
  const vals = rule(arrs, ctx, shapes);
  return shapes.map((s, k) => tensorOf(node.outputs[k] ?? '', s.elemType, s.dims, vals[k]));
}

function makeCtx(node: Node, opset: number, inputs: Array<TensorInfo | undefined>): ShapeCtx {
  const input = (i: number): TensorInfo => {
    const x = inputs[i];
    if (!x) throw new Error(`${where(node)}: input ${i} is required but missing`);
    return x;
  };
  const values = (i: number, what: string): number[] | undefined => {
    const x = inputs[i];
    if (!x) return undefined;
    if (!x.value) {
      throw new Error(`${where(node)}: its ${what} input "${node.inputs[i]}" is not a constant even with fixed input shapes; ` +
        `the shape would depend on data (specialize all free dims, or raise maxFoldElements)`);
    }
    return arrOf(x.value).v;
  };
  return {
    node, opset, inputs, input,
    ints: (i, what) => {
      const v = values(i, what);
      if (!v) throw new Error(`${where(node)}: its ${what} input (${i}) is missing`);
      return v;
    },
    optInts: values,
    optFloats: (i, what) => { const v = values(i, what); return v && v.length ? v : undefined; },
  };
}
