/** Checks that a graph only uses ops a consumer (autodiff, a runtime) supports. */
import { Graph } from './ir';

/** One message per unsupported node, e.g. `unsupported op "Foo" at node "/u/down/Foo_3"`; empty when all are supported. */
export function checkSupportedOps(graph: Graph, supported: ReadonlySet<string>): string[] {
  const errors: string[] = [];
  for (const n of graph.nodes) {
    const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    if (!supported.has(op)) errors.push(`unsupported op "${op}" at node "${n.name || n.outputs[0]}"`);
  }
  return errors;
}

/** Throws one error listing every unsupported node (first 20), with what to do about it. */
export function assertSupportedOps(graph: Graph, supported: ReadonlySet<string>, what = 'this model'): void {
  const errors = checkSupportedOps(graph, supported);
  if (!errors.length) return;
  const ops = [...new Set(errors.map((e) => e.split('"')[1]))].join(', ');
  throw new Error(`${what} uses ${errors.length} node(s) with ops we cannot handle (${ops}):\n  ${errors.slice(0, 20).join('\n  ')}` +
    `${errors.length > 20 ? `\n  ... and ${errors.length - 20} more` : ''}\nRe-export the model with plain ONNX ops (opset 17) or add support for these ops.`);
}
