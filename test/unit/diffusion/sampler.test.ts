import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { sampleDdim } from '../../../src/core/diffusion/sampler';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import { ddimCoefficients } from '../../../src/core/diffusion/ddim';
import { generateImages } from '../../../src/core/diffusion/generate';
import { checkSampler, checkTextEncoder, checkTokenizer, checkVaeDecoder } from '../../../src/core/diffusion/conformance';
import { encodePng, decodePng } from '../../../src/core/image/png';
import { generateCommand } from '../../../src/cli/generate';
import { runCommand } from '../cli/runCommand';
import { needsFixture, referenceSd } from '../fixtures';

let pipe: StableDiffusionPipeline;
before(async () => { if (!needsFixture()) pipe = await StableDiffusionPipeline.load(referenceSd); });
after(async () => { await pipe?.release(); });

const base = { prompt: 'a photo of a cat', steps: 6, guidance: 7.5, eta: 1, latentHeight: 16, latentWidth: 16 };

test('tokenizer, text encoder, VAE decoder and the whole sampler match the PyTorch oracles', { skip: needsFixture() }, async () => {
  const results = [...checkTokenizer(referenceSd), ...(await checkTextEncoder(referenceSd)), ...(await checkVaeDecoder(referenceSd)), ...(await checkSampler(referenceSd))];
  const names = results.map((r) => r.name);
  for (const n of ['tokenizer', 'text_encoder.last_hidden_state', 'vae_decoder.sample', 'sampler.trajectory', 'sampler.eps', 'sampler.log_probs', 'sampler.image']) assert.ok(names.includes(n), n);
  for (const r of results) assert.ok(r.passed, `${r.name}: max rel err ${r.maxRelErr} ${r.detail ?? ''}`);
});

test('the same seed gives byte-identical PNGs, another seed a different image', { skip: needsFixture() }, async () => {
  const png = async (seed: number) => {
    const [g] = await generateImages(pipe, { ...base, seed, count: 1 });
    return Buffer.from(encodePng(g.image, g.metadata));
  };
  const a = await png(5), b = await png(5), c = await png(6);
  assert.ok(a.equals(b));
  assert.ok(!decodePng(a).data.every((v, i) => v === decodePng(c).data[i]));
});

test('a run records the whole trajectory and log-probs, and replays exactly from its latents and noise', { skip: needsFixture() }, async () => {
  const r = await sampleDdim(pipe, { ...base, seed: 3, count: 2 });
  assert.equal(r.trajectory.length, base.steps + 1);
  assert.equal(r.logProbs.length, base.steps);
  assert.deepEqual(r.seeds, [3, 4]);
  for (const lp of r.logProbs) assert.ok(lp.length === 2 && lp.every(Number.isFinite));
  // The seeded stream of image 0 is: initial latents, then one noise draw per step; feeding those gives the same run.
  const per = 4 * 16 * 16;
  const g = new GaussianRng(3);
  const latents0 = g.fill(new Float32Array(per));
  const noise = Array.from({ length: base.steps }, () => g.fill(new Float32Array(per)));
  const replay = await sampleDdim(pipe, { ...base, seed: 999, count: 1, latents0, noise });
  replay.trajectory.forEach((x, i) => assert.deepEqual(x, r.trajectory[i].subarray(0, per), `step ${i}`));
  replay.logProbs.forEach((lp, i) => assert.equal(lp[0], r.logProbs[i][0]));
});

test('given initial latents and noise replace the generator', { skip: needsFixture() }, async () => {
  const n = 4 * 16 * 16;
  const latents0 = new Float32Array(n).fill(0.5);
  const noise = Array.from({ length: base.steps }, () => new Float32Array(n));
  const a = await sampleDdim(pipe, { ...base, seed: 1, count: 1, latents0, noise });
  const b = await sampleDdim(pipe, { ...base, seed: 99, count: 1, latents0, noise });
  assert.deepEqual(a.trajectory[0], latents0);
  assert.deepEqual(a.trajectory, b.trajectory);
  // Zero noise puts every sample on its mean: the log-prob is the density peak, -log σ - log √(2π).
  a.logProbs.forEach((lp, i) => {
    const { stdDevT } = ddimCoefficients(pipe.schedule, a.timesteps[i], base.steps, base.eta);
    assert.ok(Math.abs(lp[0] - (-Math.log(stdDevT) - 0.5 * Math.log(2 * Math.PI))) < 1e-9);
  });
});

test('progress arrives after every step and an abort stops between steps', { skip: needsFixture() }, async () => {
  const seen: number[] = [];
  await generateImages(pipe, { ...base, seed: 1, count: 2, onProgress: (p) => seen.push(p.imagesDone * 100 + p.step) });
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 101, 102, 103, 104, 105, 106]);
  const ac = new AbortController();
  let steps = 0;
  await assert.rejects(sampleDdim(pipe, { ...base, seed: 1, count: 1, signal: ac.signal, onProgress: (p) => { steps = p.step; if (p.step === 2) ac.abort(); } }), /abort/i);
  assert.equal(steps, 2);
});

test('ddpo generate writes PNGs whose metadata reproduces them', { skip: needsFixture() }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'gen-'));
  try {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push('ERR ' + l), progress: () => {}, signal: new AbortController().signal };
    const argv = ['--model', referenceSd, '--prompt', 'a red circle', '--negative', 'blue', '--seed', '11', '--steps', '4', '--count', '2', '--width', '32', '--height', '32', '--out', out];
    assert.equal(await runCommand(generateCommand, argv, io), 0, lines.join('\n'));
    assert.equal(lines.length, 2);
    const png = decodePng(readFileSync(lines[1]));
    assert.equal(png.width, 32);
    assert.deepEqual({ ...png.text, model_hash: '' }, {
      prompt: 'a red circle', negative_prompt: 'blue', seed: '12', steps: '4', guidance: '7.5', eta: '1', scheduler: 'DDIM',
      model_id: 'reference-sd', model_hash: '', software: 'DDPO Studio', size: '32x32',
    });
    assert.match(png.text.model_hash, /^[0-9a-f]{12}$/);
    // Image 2 of the batch is the image of its own seed alone.
    const [alone] = await generateImages(pipe, { prompt: 'a red circle', negativePrompt: 'blue', seed: 12, steps: 4, guidance: 7.5, eta: 1, count: 1, latentHeight: 16, latentWidth: 16 });
    assert.deepEqual(png.data, alone.image.data);
    assert.equal(await runCommand(generateCommand, ['--model', referenceSd, '--prompt', 'x', '--out', out, '--steps', 'many'], io), 2);
    assert.match(lines[lines.length - 1], /--steps must be an integer/);
  } finally { rmSync(out, { recursive: true, force: true }); }
});

test('the negative prompt is what guidance steers away from: it is encoded as the unconditional half and changes the image', { skip: needsFixture() }, async () => {
  const run = (negativePrompt?: string) => sampleDdim(pipe, { ...base, seed: 2, count: 1, negativePrompt });
  const blue = await run('blue'), none = await run();
  assert.deepEqual(blue.negativeEmbeds.data, (await pipe.encodePrompts(['blue'], { negative: true })).data);
  assert.notDeepEqual(blue.trajectory[base.steps], none.trajectory[base.steps]);
});
