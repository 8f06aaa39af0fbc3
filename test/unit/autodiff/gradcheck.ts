/** Finite-difference gradient check of one ONNX op: analytic VJP from the gradient graph vs central differences. */
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { AttrValue, DataType, Model, emptyGraph, makeModel, makeTensor } from '../../../src/core/onnx/ir';
import { GraphBuilder } from '../../../src/core/onnx/builder';
import { buildGradientGraph } from '../../../src/core/autodiff/gradient';
import { ortShapes, session } from './ortRun';
import { mulberry32 as rng } from '../../../src/core/random';

/** Deterministic uniform [0, 1) generator (mulberry32), re-exported for the gradient-check tests. */
export { rng };

/** One op input: a float graph input (differentiated) unless `constant`, or an int64/bool initializer via `type`. */
export interface In {
  dims: number[];
  values?: number[];
  type?: DataType;
  constant?: boolean;
  /** value range: 'any' U(-1,1), 'pos' U(0.5,2), 'away' |x| in (0.3,1) with random sign */
  gen?: 'any' | 'pos' | 'away';
}

export interface CheckSpec {
  op: string;
  inputs: In[];
  attrs?: Record<string, AttrValue>;
  outputs?: number;
  opset?: number;
  seed?: number;
  eps?: number;
  tol?: number;
}


function sample(r: () => number, n: number, gen: In['gen']): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (gen === 'pos') out[i] = 0.5 + 1.5 * r();
    else if (gen === 'away') out[i] = (r() < 0.5 ? -1 : 1) * (0.3 + 0.7 * r());
    else out[i] = 2 * r() - 1;
  }
  return out;
}

/** Builds the one-op model; float inputs become graph inputs x0, x1, ... */
function oneOp(spec: CheckSpec, r: () => number): { model: Model; feeds: Record<string, ort.Tensor>; wrt: string[]; outs: string[] } {
  const g = emptyGraph('gradcheck');
  const b = new GraphBuilder(g);
  const feeds: Record<string, ort.Tensor> = {};
  const wrt: string[] = [];
  const names = spec.inputs.map((inp, i) => {
    const name = `x${i}`;
    if (inp.dims.length === 0 && inp.values === undefined && inp.type === undefined && inp.constant) return '';
    const type = inp.type ?? DataType.FLOAT;
    const n = inp.dims.reduce((a, d) => a * d, 1);
    if (inp.constant || type !== DataType.FLOAT) {
      const vals = inp.values ?? Array.from(sample(r, n, inp.gen));
      g.initializers.set(name, makeTensor(name, type, inp.dims, vals));
    } else {
      b.input(name, type, inp.dims);
      feeds[name] = new ort.Tensor('float32', inp.values ? Float32Array.from(inp.values) : sample(r, n, inp.gen), inp.dims);
      wrt.push(name);
    }
    return name;
  });
  const outs = Array.from({ length: spec.outputs ?? 1 }, (_, k) => `y${k}`);
  g.nodes.push({ name: `${spec.op}_0`, opType: spec.op, domain: '', inputs: names, outputs: outs, attrs: spec.attrs ?? {} });
  const to = spec.op === 'Cast' && spec.attrs?.to?.type === 'int' ? spec.attrs.to.value : DataType.FLOAT;
  for (const o of outs) g.outputs.push({ name: o, elemType: to, shape: null });
  return { model: makeModel(g, spec.opset ?? 17), feeds, wrt, outs };
}

/** Runs the check; throws an assertion error naming the input and the worst element when gradients disagree. */
export async function gradcheck(spec: CheckSpec): Promise<{ maxErr: number }> {
  const r = rng(spec.seed ?? 1234);
  const { model, feeds, wrt, outs } = oneOp(spec, r);
  const shapes = await ortShapes(model, feeds);
  const proj = new Map(outs.map((o) => [o, sample(r, shapes.get(o)!.dims.reduce((a, d) => a * d, 1), 'any')]));
  const { model: gm, grads } = buildGradientGraph(model, { shapes, wrt, cotangents: outs });
  for (const n of gm.graph.nodes) assert.equal(n.domain, '', `gradient graph uses non-standard op ${n.domain}.${n.opType}`);
  const gs = await session(gm);
  const gfeeds = { ...feeds };
  for (const o of outs) {
    const { elemType, dims } = shapes.get(o)!;
    gfeeds[`${o}_grad`] = elemType === DataType.DOUBLE ? new ort.Tensor('float64', Float64Array.from(proj.get(o)!), dims) : new ort.Tensor('float32', proj.get(o)!, dims);
  }
  const analytic = await gs.run(gfeeds);
  const fs = await session(model);
  const loss = async (f: Record<string, ort.Tensor>) => {
    const res = await fs.run(f);
    let s = 0;
    for (const o of outs) { const y = res[o].data as Float32Array | Float64Array, p = proj.get(o)!; for (let i = 0; i < y.length; i++) s += y[i] * p[i]; }
    return s;
  };
  const eps = spec.eps ?? 1e-2;
  let worst = 0;
  for (const w of wrt) {
    const x = feeds[w].data as Float32Array;
    const a = analytic[grads[w]].data as Float32Array;
    assert.deepEqual([...analytic[grads[w]].dims], [...feeds[w].dims], `gradient of ${w} has the wrong shape`);
    const num = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      x[i] = v + eps; const lp = await loss(feeds);
      x[i] = v - eps; const lm = await loss(feeds);
      x[i] = v;
      num[i] = (lp - lm) / (2 * eps);
    }
    const scale = Math.max(1e-3, ...Array.from(num, Math.abs));
    let err = 0, at = 0;
    for (let i = 0; i < x.length; i++) { const e = Math.abs(a[i] - num[i]) / scale; if (!(e <= err)) { err = e; at = i; } }
    worst = Math.max(worst, err);
    assert.ok(err <= (spec.tol ?? 1e-2), `${spec.op}: d/d${w}[${at}] analytic ${a[at]} vs numeric ${num[at]} (rel err ${err.toExponential(2)})`);
  }
  await gs.release(); await fs.release();
  return { maxErr: worst };
}
