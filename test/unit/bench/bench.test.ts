import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../../../src/cli/dispatch';
import { benchCommands } from '../../../src/cli/bench';
import { compareWithAnchor, renderComparison } from '../../../src/core/bench/compare';
import { summarizeProfile } from '../../../src/core/runtime/profile';
import { needsFixture } from '../fixtures';

// Runs `ddpo bench <args>` on the fixture UNet on the CPU in a temp folder ($DIR in args), then `check`s the JSON and output.
async function benchFixture(args: string[], check: (r: any, lines: string[], dir: string) => void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l), progress: () => {}, signal: new AbortController().signal };
  try {
    const out = path.join(dir, 'r.json');
    const code = await runCli(['bench', ...args.map((a) => a.replace('$DIR', dir)), '--unet', 'fixture', '--ep', 'cpu', '--latent', '8', '--warmup', '0', '--runs', '1',
      '--cache', dir, '--out', out], io, benchCommands);
    assert.equal(code, 0, lines.join('\n'));
    check(JSON.parse(fs.readFileSync(out, 'utf8')), lines, dir);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
}

test('ddpo bench all on the fixture UNet measures sampling and a DDPO train step in fp32 and fp16, and writes JSON', { skip: needsFixture() }, async () => {
  await benchFixture(['all', '--batch', '2,4', '--precision', 'fp32,fp16', '--train-precision', 'fp32,fp16'], (r, lines) => {
    assert.deepEqual(r.sample.map((s: { precision: string; batch: number }) => `${s.precision}:${s.batch}`), ['fp32:2', 'fp32:4', 'fp16:2', 'fp16:4']);
    for (const s of r.sample) assert.ok(s.ep === 'cpu' && s.msPerEval > 0 && s.evalsPerSec > 0);
    assert.deepEqual(r.train.map((t: { precision: string }) => t.precision), ['fp32', 'fp16']);
    for (const t of r.train) assert.ok(t.stepMs > 0 && t.buildMs > 0 && t.nodes > 1000 && t.loraParameters > 0, JSON.stringify(t));
    assert.equal(r.train[1].lossScale, 1024);
    assert.ok(r.memory.samplePeakRssGiB > 0);
    const text = lines.join('\n');
    assert.match(text, /UNet forward\s+cpu\s+fp16\s+4/);
    assert.match(text, /DDPO LoRA train step\s+cpu\s+fp32\s+1 \(CFG: 2\)/);
  });
});

test('--train-timesteps times K timesteps per graph run (UNet batch 2K) and reports the time per timestep', { skip: needsFixture() }, async () => {
  await benchFixture(['train', '--train-precision', 'fp32', '--train-timesteps', '1,2'], (r, lines) => {
    assert.deepEqual(r.train.map((t: { timestepsPerRun: number }) => t.timestepsPerRun), [1, 2]);
    for (const t of r.train) assert.ok(Math.abs(t.msPerTimestep - t.stepMs / t.timestepsPerRun) < 1e-9, JSON.stringify(t));
    assert.ok(r.memory.train_fp32_PeakRssGiB > 0 && r.memory.train_fp32_k2_PeakRssGiB > 0, JSON.stringify(r.memory));
    const text = lines.join('\n');
    assert.match(text, /DDPO LoRA train step\s+cpu\s+fp32\s+1 \(CFG: 2\)/);
    assert.match(text, new RegExp(`DDPO LoRA train step\\s+cpu\\s+fp32\\s+1 x 2 t \\(CFG: 4\\)\\s+${r.train[1].stepMs.toFixed(1)}\\s+[\\d.]+ timesteps\\s+${r.train[1].msPerTimestep.toFixed(1)}`));
    assert.match(text, /1 x 2 timesteps per run, CFG\) on cpu: [\d.]+ ms .* [\d.]+ ms per timestep/);
  });
});

test('bad flags are refused with what to pass instead', async () => {
  const errs: string[] = [];
  const io = { out: () => {}, err: (l: string) => errs.push(l), progress: () => {}, signal: new AbortController().signal };
  assert.equal(await runCli(['bench', 'sample', '--ep', 'tpu'], io, benchCommands), 1);
  assert.match(errs[0], /--ep tpu: use auto, cuda, webgpu, dml, coreml or cpu/);
  assert.equal(await runCli(['bench', 'sample', '--precision', 'int8'], io, benchCommands), 1);
  assert.match(errs[1], /--precision: 'int8' is not fp32 or fp16/);
  assert.equal(await runCli(['bench', 'train', '--train-timesteps', '1,0'], io, benchCommands), 1);
  assert.match(errs[2], /--train-timesteps: '0' is not a positive integer/);
});

test('the comparison pairs our times with the PyTorch anchor and checks the issue targets', () => {
  const ours = {
    sample: [{ precision: 'fp16', batch: 16, msPerEval: 80, deviceMsPerEval: 60, ep: 'webgpu' }, { precision: 'fp32', batch: 2, msPerEval: 144, ep: 'webgpu' }],
    train: [{ precision: 'fp16', stepMs: 200, ep: 'webgpu' }],
    memory: { gpuBaselineMiB: 1024, train_fp16_PeakGpuMiB: 1024 + 6 * 1024 },
  };
  const anchor = { device: 'NVIDIA H100', fwd_fp32_b2_ms: 72, fwd_tf32_b2_ms: 35, fwd_fp16_b16_ms: 66, train_lora_fp16_b1_ms: 183, train_b1_peak_gib: 7 };
  const rows = compareWithAnchor(ours, anchor);
  const by = (w: string) => rows.find((r) => r.what.startsWith(w))!;
  assert.equal(by('UNet fwd batch 2, fp32 vs torch fp32').ratio, 2);
  assert.ok(Math.abs(by('UNet fwd batch 16').ratio! - 60 / 66) < 1e-12, 'device-resident time is the one compared');
  assert.equal(by('train step peak GPU memory, fp16').ours, 6);
  const text = renderComparison(rows, ours, anchor);
  assert.match(text, /UNet fwd batch 16, fp16 vs torch fp16 autocast \(ms\)\s+60\.0\s+66\.0\s+0\.91\s+≤ 1 met/);
  assert.match(text, /DDPO LoRA train step b1 CFG, fp16 vs torch fp16 \(ms\)\s+200\.0\s+183\.0\s+1\.09\s+≤ 1 MISSED/);
  assert.match(text, /GPU: NVIDIA H100; ours on webgpu/);
  // K timesteps per run: the step time per timestep against PyTorch's step, and its memory; the K = 1 rows stay K = 1's
  ours.train.push({ precision: 'fp16', stepMs: 300, ep: 'webgpu', timestepsPerRun: 4, msPerTimestep: 75 } as (typeof ours.train)[0]);
  Object.assign(ours.memory, { train_fp16_k4_PeakGpuMiB: 1024 + 9 * 1024 });
  const packed = compareWithAnchor(ours, anchor);
  assert.equal(packed.find((r) => r.what.startsWith('DDPO LoRA train step b1 CFG, fp16'))!.ours, 200);
  assert.ok(Math.abs(packed.find((r) => r.what.includes('4 timesteps per run: ms per timestep'))!.ratio! - 75 / 183) < 1e-12);
  assert.equal(packed.find((r) => r.what.startsWith('train step peak GPU memory, fp16, 4 timesteps per run'))!.ours, 9);
  // --no-recompute: its own rows; the target rows stay those of the default, recomputing step
  ours.train.push({ precision: 'fp16', stepMs: 190, ep: 'webgpu', attention: 'keep' } as (typeof ours.train)[0]);
  Object.assign(ours.memory, { train_fp16_keep_PeakGpuMiB: 1024 + 8.5 * 1024 });
  const kept = compareWithAnchor(ours, anchor);
  assert.equal(kept.find((r) => r.what === 'DDPO LoRA train step b1 CFG, fp16 vs torch fp16 (ms)')!.ours, 200);
  assert.equal(kept.find((r) => r.what.startsWith('DDPO LoRA train step b1 CFG, fp16, attention probabilities kept'))!.ours, 190);
  assert.equal(kept.find((r) => r.what.startsWith('train step peak GPU memory, fp16, attention probabilities kept'))!.ours, 8.5);
});

test('--attention and --profile: fused variants are timed beside the decomposed one and each first batch is profiled per op', { skip: needsFixture() }, async () => {
  await benchFixture(['sample', '--batch', '2,4', '--precision', 'fp32', '--attention', 'decomposed,mha-fold', '--no-ddim', '--profile', '$DIR/prof'], (r, lines) => {
    assert.deepEqual(r.sample.map((s: { attention: string; batch: number }) => `${s.attention}:${s.batch}`), ['decomposed:2', 'mha-fold:2', 'decomposed:4', 'mha-fold:4']);
    assert.equal(r.ddimStep, undefined);
    assert.deepEqual(Object.keys(r.profiles).sort(), ['sample-fp32-decomposed-b2', 'sample-fp32-mha-fold-b2']);
    const ops = (k: string) => r.profiles[k].ops.map((o: { op: string }) => o.op);
    assert.ok(ops('sample-fp32-decomposed-b2').includes('Softmax') && !ops('sample-fp32-decomposed-b2').includes('MultiHeadAttention'));
    assert.ok(ops('sample-fp32-mha-fold-b2').includes('MultiHeadAttention'));
    assert.ok(fs.existsSync(r.profiles['sample-fp32-mha-fold-b2'].file), 'the raw profile is kept, gzipped');
    assert.match(lines.join('\n'), /UNet forward \(mha-fold\)\s+cpu\s+fp32\s+4/);
  });
});

test('a profile is summed per category and op type, per run', () => {
  const ev = (cat: string, name: string, dur: number, op?: string) => ({ cat, name, ph: 'X', dur, ts: 0, args: op ? { op_name: op } : {} });
  const p = summarizeProfile([
    ev('Session', 'model_run', 9000), ev('Session', 'model_run', 11000),
    ev('Node', 'mm_kernel_time', 3000, 'MatMul'), ev('Node', 'mm2_kernel_time', 1000, 'MatMul'), ev('Node', 'sm_kernel_time', 2000, 'Softmax'),
    ev('Api', '/attn/MatMul_token_3&MatMul&MatMulProgram', 6000),
  ], 2);
  assert.deepEqual(p.runMs, [9, 11]);
  assert.deepEqual(p.totals, { Node: 3, Api: 3 });
  assert.deepEqual(p.ops.map((o) => [o.cat, o.op, o.ms, o.count]), [['Node', 'MatMul', 2, 1], ['Node', 'Softmax', 1, 0.5], ['Api', 'MatMul:MatMulProgram', 3, 0.5]]);
});

test('bench train --unet sdxl-tiny builds SDXL\'s topology (text_time conditioning) and times a CPU train step at a small latent size', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-sdxl-'));
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l), progress: () => {}, signal: new AbortController().signal };
  try {
    const out = path.join(dir, 'r.json');
    const code = await runCli(['bench', 'train', '--unet', 'sdxl-tiny', '--ep', 'cpu', '--latent', '8', '--warmup', '0', '--runs', '1', '--cache', dir, '--out', out], io, benchCommands);
    assert.equal(code, 0, lines.join('\n'));
    const r = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(r.unet.name, 'sdxl-tiny');
    assert.ok(r.unet.buildMs >= 0 && r.train[0].buildMs > 0 && r.train[0].stepMs > 0, JSON.stringify(r.train));
    assert.match(lines.join('\n'), /DDPO LoRA train step\s+cpu\s+fp32\s+1 \(CFG: 2\)/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
