// Generation with the UNet rebuilt for GPU providers (fused attention, float16), forced onto the CPU here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { useFastUnet } from '../../../src/core/diffusion/fastUnet';
import { generateImages } from '../../../src/core/diffusion/generate';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import { needsFixture, referenceSd } from '../fixtures';

const TINY = path.resolve(__dirname, '../../../media/tiny-model');

/** Largest difference relative to the largest magnitude. */
function relMax(a: Float32Array, b: Float32Array): number {
  let e = 0, s = 0;
  for (let i = 0; i < a.length; i++) { e = Math.max(e, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(b[i])); }
  return e / s;
}

/** The exported UNet's and the rebuilt UNet's predictions for the same random batches. */
async function predictions(dir: string, calls: [batch: number, latent: number][], opts: Parameters<typeof useFastUnet>[1]) {
  const logs: string[] = [];
  const base = await StableDiffusionPipeline.load(dir);
  const fast = await StableDiffusionPipeline.load(dir);
  useFastUnet(fast, { ...opts, onLog: (l) => logs.push(l) });
  try {
    const out: { want: Float32Array; got: Float32Array }[] = [];
    for (const [k, [batch, latent]] of calls.entries()) {
      const ctx = await base.encodePrompts(Array.from({ length: batch }, (_, i) => `a shape number ${i}`));
      const x = new GaussianRng(k + 1).fill(new Float32Array(batch * base.latentChannels * latent * latent));
      out.push({ want: await base.predict(x, batch, latent, latent, 400, ctx), got: await fast.predict(x, batch, latent, latent, 400, ctx) });
    }
    return { out, logs };
  } finally { await base.release(); await fast.release(); }
}

test('the embedded model rebuilt in float16 with fused attention predicts like its export, at any batch, built once', async () => {
  const { out, logs } = await predictions(TINY, [[2, 8], [4, 8], [1, 8]], { fp16: true });
  for (const [k, { want, got }] of out.entries()) assert.ok(relMax(got, want) < 2e-2, `call ${k}: ${relMax(got, want)}`);
  assert.equal(logs.length, 1, logs.join('\n'));
  assert.match(logs[0], /^generation UNet rebuilt: float16, \d+ attention cores fused$/);
});

test('a PyTorch export is specialised to its first batch; other batches run in padded chunks, another latent size rebuilds it', { skip: needsFixture() }, async () => {
  const { out, logs } = await predictions(referenceSd, [[4, 8], [2, 8], [5, 8], [2, 16]], { fp16: false });
  // float32: only the fused attention differs, so the predictions agree to float32 rounding
  for (const [k, { want, got }] of out.entries()) assert.ok(relMax(got, want) < 1e-4, `call ${k}: ${relMax(got, want)}`);
  assert.equal(logs.length, 2, logs.join('\n'));
  assert.match(logs[0], /^generation UNet rebuilt: \d+ attention cores fused \(specialised to UNet batch 4, 8x8 latents\)$/);
  assert.match(logs[1], /^generation UNet rebuilt: \d+ attention cores fused \(specialised to UNet batch 2, 16x16 latents\)$/);
  const half = await predictions(referenceSd, [[2, 8]], { fp16: true });
  assert.ok(relMax(half.out[0].got, half.out[0].want) < 2e-2, String(relMax(half.out[0].got, half.out[0].want)));
  assert.match(half.logs[0], /^generation UNet rebuilt: float16, \d+ attention cores fused \(specialised/);
});

test('an export with a fixed batch of 1 runs rebuilt one row at a time', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const { loadModel, saveModel } = await import('../../../src/core/onnx/proto');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-fixed-'));
  try {
    fs.cpSync(TINY, dir, { recursive: true });
    const file = path.join(dir, 'unet/model.onnx');
    const m = loadModel(file);
    for (const v of [...m.graph.inputs, ...m.graph.outputs]) if (v.shape && v.shape.length > 0) v.shape[0] = 1;
    saveModel(m, file);
    const { out, logs } = await predictions(dir, [[1, 8], [4, 8]], { fp16: true });
    for (const [k, { want, got }] of out.entries()) assert.ok(relMax(got, want) < 2e-2, `call ${k}: ${relMax(got, want)}`);
    assert.equal(logs.length, 1, logs.join('\n'));
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('when the rebuild cannot help, generation stays on the exported UNet and says why', async () => {
  const logs: string[] = [];
  const base = await StableDiffusionPipeline.load(TINY);
  const pipe = await StableDiffusionPipeline.load(TINY);
  useFastUnet(pipe, { fp16: false, fuse: false, onLog: (l) => logs.push(l) });
  try {
    const settings = { prompt: 'a red circle', seed: 3, steps: 3, guidance: 5, eta: 1, count: 2, batchSize: 2 };
    const [want, got] = [await generateImages(base, settings), await generateImages(pipe, settings)];
    assert.deepEqual(got.map((g) => g.image.data), want.map((g) => g.image.data));
    assert.deepEqual(logs, ['generation stays on the exported UNet: rebuilding it failed: neither float16 nor fused attention applies to it']);
  } finally { await base.release(); await pipe.release(); }
});

test('ddpo generate --fast-unet on rebuilds the UNet and writes nearly the same image; a bad value is refused', async () => {
  const { generateCommand } = await import('../../../src/cli/generate');
  const { runCommand } = await import('../cli/runCommand');
  const { decodePng } = await import('../../../src/core/image/png');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gen-fast-'));
  try {
    const run = async (mode: string) => {
      const lines: string[] = [];
      const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push('ERR ' + l), progress: () => {}, signal: new AbortController().signal };
      const code = await runCommand(generateCommand, ['--model', TINY, '--prompt', 'a red circle', '--seed', '4', '--steps', '4', '--out', path.join(out, mode), '--fast-unet', mode], io);
      return { code, lines };
    };
    const [off, on] = [await run('off'), await run('on')];
    assert.equal(off.code, 0, off.lines.join('\n'));
    assert.equal(on.code, 0, on.lines.join('\n'));
    assert.ok(!off.lines.some((l) => l.startsWith('ERR')), off.lines.join('\n'));
    assert.match(on.lines[0], /^ERR generation UNet rebuilt: float16, \d+ attention cores fused$/);
    const [a, b] = [off, on].map((r) => decodePng(fs.readFileSync(r.lines[r.lines.length - 1])).data);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst <= 8, `float16 moved a pixel by ${worst}/255`);
    const bad = await run('fast');
    assert.equal(bad.code, 2, 'a bad value is a usage error');
    assert.match(bad.lines.join('\n'), /--fast-unet must be auto, on or off, got 'fast'/);
  } finally { fs.rmSync(out, { recursive: true, force: true }); }
});
