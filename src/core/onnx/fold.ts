/** Constant folding: nodes whose inputs are all known small constants become initializers. */
import { Graph } from './ir';
import { eliminateDeadNodes } from './dce';
import { AnalyzeOptions, TensorInfo, analyzeGraph } from './shapes';

export interface FoldResult {
  /** Nodes replaced by initializers (Constant nodes included). */
  folded: number;
  /** Nodes removed as dead afterwards. */
  removed: number;
  /** The analysis the folding was based on (shapes of every tensor, before folding). */
  infos: Map<string, TensorInfo>;
}

/**
 * Evaluates every node whose inputs are known constants (initializers, Constant nodes, Shape of a statically
 * shaped tensor) and whose tensors are within `maxFoldElements`, replaces it by initializers, then removes dead
 * nodes. Big initializers are never read or copied. Mutates `graph`.
 */
export function foldConstants(graph: Graph, opset: number, opts: AnalyzeOptions = {}): FoldResult {
  const infos = analyzeGraph(graph, opset, opts);
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  let folded = 0;
  graph.nodes = graph.nodes.filter((n) => {
    const outs = n.outputs.filter((o) => o);
    // a graph output must stay produced by a node
    if (!outs.length || outs.some((o) => !infos.get(o)?.value || graphOutputs.has(o))) return true;
    for (const o of outs) graph.initializers.set(o, { ...infos.get(o)!.value!, name: o });
    folded++;
    return false;
  });
  const removed = eliminateDeadNodes(graph);
  return { folded, removed, infos };
}
