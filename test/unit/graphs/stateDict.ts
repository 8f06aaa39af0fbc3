/** Recovers a PyTorch-layout state dict from a TorchScript ONNX export, using the module scopes kept in node names. */
import { DataType, Graph, Model, Tensor } from '../../../src/core/onnx/ir';
import { StateDict } from '../../../src/core/graphs/weights';

/** Options of {@link extractStateDict}. */
export interface ExtractOptions {
  /** Replace a leading scope segment, e.g. `['u', '']` for a wrapped export or `['m', 'text_model']`. */
  root?: [string, string];
}

/**
 * Names every weight of an export by its module path: Conv/Gemm/LayerNormalization inputs, MatMul weights (transposed
 * back to `[out, in]`), the bias `Add` of a linear, GroupNorm `Mul`/`Add` after InstanceNormalization, embedding Gathers,
 * a ViT's class token (the `Expand` in `embeddings`).
 * Anonymous initializers (`onnx::MatMul_1624`) and deduplicated ones (behind Identity nodes) are resolved.
 */
export function extractStateDict(model: Model, opts: ExtractOptions = {}): StateDict {
  const g = model.graph;
  const constOf = constResolver(g);
  const normScopes = new Set(g.nodes.filter((n) => n.opType === 'InstanceNormalization').map((n) => scopeOf(n.name)));
  const linearScopes = new Set(g.nodes.filter((n) => n.opType === 'MatMul' && constOf(n.inputs[1])).map((n) => scopeOf(n.name)));
  const out: StateDict = new Map();
  const put = (scope: string, leaf: string, t: Tensor | undefined, transpose = false): void => {
    if (!t || t.dataType !== DataType.FLOAT) return;
    const name = moduleName(scope, opts.root) + '.' + leaf;
    out.set(name, transpose ? transpose2d(t) : Float32Array.from(t.data as Float32Array));
  };
  for (const n of g.nodes) {
    if (!n.name.startsWith('/')) continue;
    const scope = scopeOf(n.name);
    const leafOp = n.name.slice(n.name.lastIndexOf('/') + 1);
    switch (n.opType) {
      case 'Conv': case 'LayerNormalization':
        put(scope, 'weight', constOf(n.inputs[1]));
        put(scope, 'bias', constOf(n.inputs[2]));
        break;
      case 'Gemm': {
        const tb = n.attrs.transB?.value === 1;
        put(scope, 'weight', constOf(n.inputs[1]), !tb);
        put(scope, 'bias', constOf(n.inputs[2]));
        break;
      }
      case 'MatMul': put(scope, 'weight', constOf(n.inputs[1]), true); break;
      case 'Gather': if (scope.endsWith('embedding')) put(scope, 'weight', constOf(n.inputs[0])); break;
      case 'Expand': if (scope.endsWith('embeddings')) put(scope, 'class_embedding', constOf(n.inputs[0])); break;
      case 'Add': case 'Mul': {
        if (leafOp !== n.opType) break; // only the first Add/Mul of a scope is a bias/scale
        const t = n.inputs.map(constOf).find((c) => c && c.dims.length > 0 && c.dims[0] > 1);
        if (normScopes.has(scope)) put(scope, n.opType === 'Mul' ? 'weight' : 'bias', t);
        else if (n.opType === 'Add' && linearScopes.has(scope)) put(scope, 'bias', t);
        break;
      }
      default: break;
    }
  }
  return out;
}

function scopeOf(nodeName: string): string {
  return nodeName.slice(1, nodeName.lastIndexOf('/'));
}

function moduleName(scope: string, root?: [string, string]): string {
  const parts = scope.split('/');
  if (root && parts[0] === root[0]) {
    if (root[1]) parts[0] = root[1];
    else parts.shift();
  }
  return parts.join('.');
}

// Follows Identity chains back to an initializer.
function constResolver(g: Graph): (name: string | undefined) => Tensor | undefined {
  const ident = new Map<string, string>();
  for (const n of g.nodes) if (n.opType === 'Identity') ident.set(n.outputs[0], n.inputs[0]);
  return (name) => {
    let cur = name;
    for (let i = 0; cur && i < 16 && !g.initializers.has(cur); i++) cur = ident.get(cur);
    return cur ? g.initializers.get(cur) : undefined;
  };
}

function transpose2d(t: Tensor): Float32Array {
  const [r, c] = t.dims;
  const src = t.data as Float32Array;
  const o = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) o[j * r + i] = src[i * c + j];
  return o;
}
