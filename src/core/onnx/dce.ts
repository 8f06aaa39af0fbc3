/** Dead-code elimination: drop nodes and initializers that no kept output depends on. */
import { Graph, subgraphOuterNames } from './ir';

/** Removes nodes whose outputs reach none of `keepOutputs` (default: the graph outputs), then unused initializers. Returns nodes removed. */
export function eliminateDeadNodes(graph: Graph, keepOutputs: Iterable<string> = graph.outputs.map((o) => o.name)): number {
  const live = new Set<string>(keepOutputs);
  const keep = new Array<boolean>(graph.nodes.length).fill(false);
  // nodes are not necessarily in topological order, so sweep until nothing changes (usually two passes)
  for (let changed = true; changed;) {
    changed = false;
    for (let i = graph.nodes.length - 1; i >= 0; i--) {
      const n = graph.nodes[i];
      if (keep[i] || !n.outputs.some((o) => o && live.has(o))) continue;
      keep[i] = changed = true;
      for (const x of [...n.inputs, ...subgraphOuterNames(n)]) if (x) live.add(x);
    }
  }
  const before = graph.nodes.length;
  graph.nodes = graph.nodes.filter((_, i) => keep[i]);
  for (const name of [...graph.initializers.keys()]) if (!live.has(name)) graph.initializers.delete(name);
  const produced = new Set(graph.nodes.flatMap((n) => n.outputs));
  graph.valueInfo = graph.valueInfo.filter((v) => produced.has(v.name));
  return before - graph.nodes.length;
}
