/** Recognises attention blocks by their dataflow: q/k/v projections -> QK^T -> Softmax -> ·V -> out projection. */
import { Node } from '../onnx/ir';
import { GraphIndex, LinearLayer, linearLayerOf } from './graphIndex';

/** One attention block found in the graph. */
export interface AttentionSite {
  softmax: Node;
  q: LinearLayer;
  k: LinearLayer;
  v: LinearLayer;
  /** The output projection (absent when the graph ends in something we do not follow). */
  out?: LinearLayer;
  /** q, k and v read the same hidden state (attn1); otherwise k/v read a context (attn2). */
  selfAttention: boolean;
}

/** Ops that move or rescale a head tensor without mixing it with other data. */
const PASS_THROUGH = new Set(['Reshape', 'Transpose', 'Cast', 'Identity', 'Squeeze', 'Unsqueeze', 'Mul', 'Div', 'Add', 'Sub', 'Contiguous']);

/** The non-constant input a pass-through node carries forward (undefined when two inputs carry data). */
function dataInput(index: GraphIndex, n: Node): string | undefined {
  const live = n.inputs.filter((i) => i && !index.isConstLike(i));
  if (n.opType === 'Reshape' || n.opType === 'Squeeze' || n.opType === 'Unsqueeze') return n.inputs[0];
  return live.length === 1 ? live[0] : undefined;
}

/** Walks up from `value` through pass-through ops to a linear layer with a constant weight. */
function linearAbove(index: GraphIndex, value: string): LinearLayer | undefined {
  let v: string | undefined = value;
  for (let hops = 0; v && hops < 16; hops++) {
    const p = index.producer.get(v);
    if (!p) return undefined;
    const lin = linearLayerOf(index, p);
    if (lin) return lin;
    if (!PASS_THROUGH.has(p.opType)) return undefined;
    v = dataInput(index, p);
  }
  return undefined;
}

/** The single data consumer of `value` that is not a shape query. */
function dataReader(index: GraphIndex, value: string): Node | undefined {
  const readers = index.readers(value).filter((n) => n.opType !== 'Shape' && n.opType !== 'Size');
  return readers.length === 1 ? readers[0] : undefined;
}

/** Walks down from `value` through pass-through ops to a linear layer reading it. */
function linearBelow(index: GraphIndex, value: string): LinearLayer | undefined {
  let v = value;
  for (let hops = 0; hops < 16; hops++) {
    const r = dataReader(index, v);
    if (!r) return undefined;
    const lin = linearLayerOf(index, r);
    if (lin) return r.inputs[0] === v ? lin : undefined;
    if (!PASS_THROUGH.has(r.opType) || r.opType === 'Add' || dataInput(index, r) !== v) return undefined;
    v = r.outputs[0];
  }
  return undefined;
}

/** The MatMul producing attention scores, skipping scale/mask/cast ops between it and the Softmax. */
function scoresMatMul(index: GraphIndex, value: string): Node | undefined {
  let v: string | undefined = value;
  for (let hops = 0; v && hops < 6; hops++) {
    const p = index.producer.get(v);
    if (!p) return undefined;
    if (p.opType === 'MatMul' && !index.isConstLike(p.inputs[0]) && !index.isConstLike(p.inputs[1])) return p;
    if (!['Mul', 'Div', 'Add', 'Cast', 'Identity'].includes(p.opType)) return undefined;
    v = dataInput(index, p);
  }
  return undefined;
}

/** All attention blocks, in graph order. */
export function findAttentions(index: GraphIndex): AttentionSite[] {
  const sites: AttentionSite[] = [];
  for (const softmax of index.order) {
    if (softmax.opType !== 'Softmax') continue;
    const scores = scoresMatMul(index, softmax.inputs[0]);
    if (!scores) continue;
    const q = linearAbove(index, scores.inputs[0]);
    const k = linearAbove(index, scores.inputs[1]);
    let probs = softmax.outputs[0];
    let av = dataReader(index, probs);
    while (av && av.opType === 'Cast') { probs = av.outputs[0]; av = dataReader(index, probs); }
    if (!q || !k || !av || av.opType !== 'MatMul' || av.inputs[0] !== probs) continue;
    const v = linearAbove(index, av.inputs[1]);
    if (!v) continue;
    const out = linearBelow(index, av.outputs[0]);
    sites.push({ softmax, q, k, v, out, selfAttention: q.node.inputs[0] === k.node.inputs[0] });
  }
  return sites;
}
