// Each fused com.microsoft op lowered to standard operators computes what onnxruntime computes for the fused op (where
// the CPU has its kernel), else what the standard graph it fuses computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, emptyGraph, makeModel, type Model } from '../../../src/core/onnx/ir';
import { lowerContribOps } from '../../../src/core/onnx/lowerContrib';
import { createSession, crashingFusedOps, openModel, runModel, type FeedValue } from '../../../src/core/runtime/ortRun';
import { standardUnet } from '../../../src/core/train/standardForm';

const MS = { domain: 'com.microsoft' };

function model(build: (b: GraphBuilder) => void, opset = 17): Model {
  const g = emptyGraph('op');
  build(new GraphBuilder(g));
  const m = makeModel(g, opset);
  m.opsetImports.push({ domain: 'com.microsoft', version: 1 });
  return m;
}

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => { s = (s * 1103515245 + 12345) % 2 ** 31; return (s / 2 ** 31) * 2 - 1; });
}

async function run(m: Model, feeds: Record<string, FeedValue>): Promise<Float32Array[]> {
  const s = await createSession(m);
  try { const out = await runModel(s, m, feeds); return m.graph.outputs.map((o) => out.get(o.name)!.data); } finally { await s.release(); }
}

function assertClose(a: Float32Array[], b: Float32Array[], what: string, tol = 1e-5): void {
  assert.equal(a.length, b.length);
  a.forEach((x, k) => {
    let e = 0, s = 0;
    for (let i = 0; i < x.length; i++) { e = Math.max(e, Math.abs(x[i] - b[k][i])); s = Math.max(s, Math.abs(b[k][i])); }
    assert.ok(x.length === b[k].length && e <= tol * Math.max(s, 1e-6), `${what} output ${k}: ${e / s}`);
  });
}

async function sameAsFused(m: Model, feeds: Record<string, FeedValue>, what: string): Promise<void> {
  const low = lowerContribOps(m);
  assert.ok(!low.model.graph.nodes.some((n) => n.domain), `${what}: nothing fused is left`);
  assertClose(await run(low.model, feeds), await run(m, feeds), what);
}

const x3 = (b: GraphBuilder, name = 'x', S = 5, D = 8) => b.input(name, DataType.FLOAT, [2, S, D]);
const feed3 = (S = 5, D = 8, seed = 1): FeedValue => ({ dims: [2, S, D], data: rand(2 * S * D, seed) });

test('MultiHeadAttention (separate q, k, v with bias; packed k/v; packed q/k/v), Attention and SkipLayerNormalization lower to what onnxruntime computes', async () => {
  const bias = (b: GraphBuilder) => b.constF(rand(24, 9));
  await sameAsFused(model((b) => b.output(b.op('MultiHeadAttention', [x3(b, 'q'), x3(b, 'k', 3), x3(b, 'v', 3), bias(b)], { num_heads: A.i(2) }, MS))), { q: feed3(), k: feed3(3, 8, 2), v: feed3(3, 8, 3) }, 'MHA q,k,v,bias');
  // onnxruntime's CPU kernel takes no packed k/v or q/k/v: the packed forms against the same attention on separate inputs
  const kv = rand(96, 4);
  const part = (src: Float32Array, S: number, P: number, p: number) => Float32Array.from({ length: 2 * S * 8 }, (_, i) => {
    const [bs, n, h] = [Math.floor(i / 8), Math.floor((i % 8) / 4), i % 4];
    return src[((bs * 2 + n) * P + p) * 4 + h];
  });
  const separate = model((b) => b.output(b.op('MultiHeadAttention', [x3(b, 'q'), x3(b, 'k', 3), x3(b, 'v', 3)], { num_heads: A.i(2), scale: A.f(0.3) }, MS)));
  const packedKv = lowerContribOps(model((b) => b.output(b.op('MultiHeadAttention', [x3(b, 'q'), b.input('kv', DataType.FLOAT, [2, 3, 2, 2, 4])], { num_heads: A.i(2), scale: A.f(0.3) }, MS)))).model;
  assertClose(await run(packedKv, { q: feed3(), kv: { dims: [2, 3, 2, 2, 4], data: kv } }), await run(separate, { q: feed3(), k: { dims: [2, 3, 8], data: part(kv, 3, 2, 0) }, v: { dims: [2, 3, 8], data: part(kv, 3, 2, 1) } }), 'MHA packed kv');
  const qkv = rand(240, 5);
  const packedQkv = lowerContribOps(model((b) => b.output(b.op('MultiHeadAttention', [b.input('qkv', DataType.FLOAT, [2, 5, 2, 3, 4])], { num_heads: A.i(2), scale: A.f(0.3) }, MS)))).model;
  const sep = (p: number) => ({ dims: [2, 5, 8], data: part(qkv, 5, 3, p) });
  assertClose(await run(packedQkv, { qkv: { dims: [2, 5, 2, 3, 4], data: qkv } }), await run(model((b) => b.output(b.op('MultiHeadAttention', [x3(b, 'q'), x3(b, 'k'), x3(b, 'v')], { num_heads: A.i(2), scale: A.f(0.3) }, MS))), { q: sep(0), k: sep(1), v: sep(2) }), 'MHA packed qkv');
  await sameAsFused(model((b) => b.output(b.op('Attention', [x3(b), b.constF(rand(8 * 24, 6), [8, 24]), bias(b)], { num_heads: A.i(2) }, MS))), { x: feed3() }, 'Attention');
  // onnxruntime's kernel for the output and the sum S (outputs 0 and 3, what its optimizer writes)
  for (const opset of [14, 17]) {
    await sameAsFused(skipLayerNorm([0, 3], opset), { x: feed3(), s: feed3(5, 8, 2) }, `SkipLayerNormalization opset ${opset}`);
  }
});

/** x + s + bias through SkipLayerNormalization, with the outputs `used` as graph outputs (the others unnamed). */
function skipLayerNorm(used: number[], opset = 17): Model {
  const m = model((b) => {
    const outs = b.nodeN('SkipLayerNormalization', [x3(b), x3(b, 's'), b.constF(rand(8, 7)), b.constF(rand(8, 8)), b.constF(rand(8, 9))], { epsilon: A.f(1e-5) }, { ...MS, outputs: 4 });
    outs.forEach((o, k) => { if (used.includes(k)) b.output(o); });
  }, opset);
  const node = m.graph.nodes.find((n) => n.opType === 'SkipLayerNormalization')!;
  node.outputs = node.outputs.map((o, k) => (used.includes(k) ? o : ''));
  return m;
}

// onnxruntime-node's CPU kernel kills the process (SIGSEGV) when the mean or 1/σ output is asked for: such a node must
// reach onnxruntime lowered, and its mean and 1/σ are checked here against their definition.
test('SkipLayerNormalization asked for its mean and 1/σ opens lowered and computes them', async () => {
  const m = skipLayerNorm([0, 1, 2, 3]);
  assert.deepEqual([...crashingFusedOps(m)], ['SkipLayerNormalization']);
  assert.equal(crashingFusedOps(skipLayerNorm([0, 3])).size, 0);
  const [x, s] = [feed3(), feed3(5, 8, 2)];
  const [, mean, invStd, sum] = await run(m, { x, s });
  const bias = rand(8, 9);
  for (let r = 0; r < 10; r++) {
    const row = Array.from({ length: 8 }, (_, i) => x.data[r * 8 + i] + s.data[r * 8 + i] + bias[i]);
    const mu = row.reduce((a, v) => a + v, 0) / 8;
    const variance = row.reduce((a, v) => a + (v - mu) ** 2, 0) / 8;
    assert.ok(Math.abs(mean[r] - mu) < 1e-5, `row ${r} mean ${mean[r]} vs ${mu}`);
    assert.ok(Math.abs(invStd[r] - 1 / Math.sqrt(variance + 1e-5)) < 1e-4 * invStd[r], `row ${r} 1/σ ${invStd[r]}`);
    row.forEach((v, i) => assert.ok(Math.abs(sum[r * 8 + i] - v) < 1e-6));
  }
});

test('Gelu, BiasGelu, FastGelu and QuickGelu lower to what onnxruntime computes', async () => {
  for (const [op, inputs] of [['Gelu', 1], ['BiasGelu', 2], ['FastGelu', 2], ['QuickGelu', 1]] as const) {
    await sameAsFused(model((b) => b.output(b.op(op, [x3(b), b.constF(rand(8, 3))].slice(0, inputs), {}, MS))), { x: feed3() }, op);
  }
  // CLIP's 1.702 is only the default
  await sameAsFused(model((b) => b.output(b.op('QuickGelu', [x3(b)], { alpha: A.f(1) }, MS))), { x: feed3() }, 'QuickGelu alpha 1');
});

// The CPU has no kernel for these: each lowered graph against the standard graph that computes the same thing.
test('GroupNorm, SkipGroupNorm, NhwcConv, BiasAdd and BiasSplitGelu (CUDA kernels only) lower to their standard equivalents', async () => {
  const nhwc = (b: GraphBuilder) => b.input('x', DataType.FLOAT, [2, 4, 4, 8]);
  const xf = { dims: [2, 4, 4, 8], data: rand(256, 1) };
  const gamma = (b: GraphBuilder) => b.constF(rand(8, 2)), beta = (b: GraphBuilder) => b.constF(rand(8, 3));
  const toNchw = (b: GraphBuilder, v: string) => b.op('Transpose', [v], { perm: A.ints([0, 3, 1, 2]) });
  const toNhwc = (b: GraphBuilder, v: string) => b.op('Transpose', [v], { perm: A.ints([0, 2, 3, 1]) });
  const groupNorm21 = (b: GraphBuilder, v: string, silu: boolean) => {
    const y = b.op('GroupNormalization', [toNchw(b, v), gamma(b), beta(b)], { num_groups: A.i(2), epsilon: A.f(1e-5) });
    return toNhwc(b, silu ? b.op('Mul', [y, b.op('Sigmoid', [y])]) : y);
  };
  for (const silu of [0, 1]) {
    const low = lowerContribOps(model((b) => b.output(b.op('GroupNorm', [nhwc(b), gamma(b), beta(b)], { groups: A.i(2), activation: A.i(silu), epsilon: A.f(1e-5) }, MS)))).model;
    assertClose(await run(low, { x: xf }), await run(model((b) => b.output(groupNorm21(b, nhwc(b), !!silu)), 21), { x: xf }), `GroupNorm activation ${silu}`);
  }
  for (const skipDims of [[2, 8], [2, 1, 1, 8], [2, 4, 4, 8]]) {
    const sf = { dims: skipDims, data: rand(skipDims.reduce((a, c) => a * c, 1), 4) };
    const low = lowerContribOps(model((b) => {
      const [y, s] = b.nodeN('SkipGroupNorm', [nhwc(b), gamma(b), beta(b), b.input('skip', DataType.FLOAT, skipDims), b.constF(rand(8, 5))], { groups: A.i(2), activation: A.i(1) }, { ...MS, outputs: 2 });
      b.output(y); b.output(s);
    })).model;
    const ref = model((b) => {
      const skip = b.input('skip', DataType.FLOAT, skipDims);
      const s = b.op('Add', [b.op('Add', [nhwc(b), skipDims.length === 2 ? b.op('Reshape', [skip, b.constI64([2, 1, 1, 8])]) : skip]), b.constF(rand(8, 5))]);
      b.output(groupNorm21(b, s, true)); b.output(s);
    }, 21);
    assertClose(await run(low, { x: xf, skip: sf }), await run(ref, { x: xf, skip: sf }), `SkipGroupNorm skip [${skipDims}]`);
  }
  const w = rand(8 * 8 * 9, 6), cb = rand(8, 7);
  const convAttrs = { kernel_shape: A.ints([3, 3]), pads: A.ints([1, 1, 1, 1]) };
  const conv = lowerContribOps(model((b) => b.output(b.op('NhwcConv', [nhwc(b), b.constF(w, [8, 8, 3, 3]), b.constF(cb)], convAttrs, MS)))).model;
  assertClose(await run(conv, { x: xf }), await run(model((b) => b.output(toNhwc(b, b.op('Conv', [toNchw(b, nhwc(b)), b.constF(w, [8, 8, 3, 3]), b.constF(cb)], convAttrs)))), { x: xf }), 'NhwcConv');
  const add = lowerContribOps(model((b) => b.output(b.op('BiasAdd', [x3(b), b.constF(rand(8, 2)), x3(b, 's')], {}, MS)))).model;
  assertClose(await run(add, { x: feed3(), s: feed3(5, 8, 2) }), await run(model((b) => b.output(b.op('Add', [b.op('Add', [x3(b), b.constF(rand(8, 2))]), x3(b, 's')]))), { x: feed3(), s: feed3(5, 8, 2) }), 'BiasAdd');
  const split = lowerContribOps(model((b) => b.output(b.op('BiasSplitGelu', [x3(b), b.constF(rand(8, 2))], {}, MS)))).model;
  const splitRef = model((b) => {
    const [l, r] = b.nodeN('Split', [b.op('Add', [x3(b), b.constF(rand(8, 2))]), b.constI64([4, 4])], { axis: A.i(-1) }, { outputs: 2 });
    b.output(b.op('Mul', [l, b.op('Gelu', [r])]));
  }, 20);
  assertClose(await run(split, { x: feed3() }), await run(splitRef, { x: feed3() }), 'BiasSplitGelu');
});

// diffusers' VAE normalises with epsilon 1e-6, which only shows on a nearly flat feature map; channels_last 0 keeps NCHW.
test('GroupNorm keeps its own epsilon, and with channels_last 0 its NCHW layout', async () => {
  const gamma = rand(8, 2), beta = rand(8, 3);
  for (const last of [1, 0]) {
    const dims = last ? [2, 4, 4, 8] : [2, 8, 4, 4];
    const xf = { dims, data: rand(256, 1).map((v) => v * 1e-3) };
    const low = lowerContribOps(model((b) => b.output(b.op('GroupNorm', [b.input('x', DataType.FLOAT, dims), b.constF(gamma), b.constF(beta)], { groups: A.i(2), activation: A.i(0), epsilon: A.f(1e-6), channels_last: A.i(last) }, MS)))).model;
    const ref = model((b) => {
      const x = b.input('x', DataType.FLOAT, dims);
      const y = b.op('GroupNormalization', [last ? b.op('Transpose', [x], { perm: A.ints([0, 3, 1, 2]) }) : x, b.constF(gamma), b.constF(beta)], { num_groups: A.i(2), epsilon: A.f(1e-6) });
      b.output(last ? b.op('Transpose', [y], { perm: A.ints([0, 2, 3, 1]) }) : y);
    }, 21);
    assertClose(await run(low, { x: xf }), await run(ref, { x: xf }), `GroupNorm channels_last ${last}`);
  }
});

test('a fused op without a rule is named, with what to do; a session the CPU cannot open fused opens lowered', async () => {
  const unknown = model((b) => b.output(b.op('DecoderMaskedMultiHeadAttention', [x3(b)], {}, MS)));
  assert.deepEqual(lowerContribOps(unknown).unsupported, ['DecoderMaskedMultiHeadAttention']);
  assert.throws(() => standardUnet(unknown), /fused operators com\.microsoft\.DecoderMaskedMultiHeadAttention, which training cannot lower.*without --optimize/);
  const gn = model((b) => b.output(b.op('GroupNorm', [b.input('x', DataType.FLOAT, [1, 2, 2, 4]), b.constF([1, 1, 1, 1]), b.constF([0, 0, 0, 0])], { groups: A.i(2), activation: A.i(0) }, MS)));
  const opened = await openModel(gn);
  try { assert.deepEqual(opened.loweredOps, ['GroupNorm']); } finally { await opened.session.release(); }
});
