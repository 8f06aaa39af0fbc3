// The built-in priors: the LAION aesthetic predictor read from safetensors and from a .pth (its published weights cannot
// be downloaded here, so a head with the same tensor names and shapes and random weights stands in for them, checked
// against a float64 forward pass), clip_score, their errors, and each as a DDPO reward on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AESTHETIC_LAYERS, AESTHETIC_WIDTHS, aestheticScore, loadAestheticPredictor } from '../../../src/core/reward/aesthetic';
import { fittingPriors, localBackboneTraits, PRIOR_NAMES } from '../../../src/core/reward/priorNames';
import { openPrior } from '../../../src/core/reward/priors';
import { openBackbone } from '../../../src/core/reward/openBackbone';
import { statsBackbone, type Backbone } from '../../../src/core/reward/backbone';
import { makeReward } from '../../../src/core/ddpo/rewards';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { ExperimentStore } from '../../../src/core/experiment/store';
import { mulberry32 } from '../../../src/core/random';
import { renderShape, randomShape } from '../../../src/core/reward/sim';
import { f32, writeSafetensors } from '../../../src/core/safetensors';
import { OP, Pickle, torchArchive, writeTorchFile, type TensorSpec } from '../foundation/torchSave';
import { trainExperimentReward } from '../../../src/core/reward/experiment';
import { makeSimulatedExperiment } from './helpers/simulatedExperiment';
import { writeTestClipFolder } from './helpers/clipFolder';
import { startMockHub } from '../models/mockHub';
import { cachedModelDir } from '../../../src/core/models/hubDownload';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-priors-'));

/** A head shaped like the LAION predictor, with seeded random weights, as its state dict's tensors. */
function aestheticTensors(seed: number): Record<string, { shape: number[]; data: Float32Array }> {
  const rng = mulberry32(seed);
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  AESTHETIC_LAYERS.forEach((idx, k) => {
    const [inW, outW] = [AESTHETIC_WIDTHS[k], AESTHETIC_WIDTHS[k + 1]];
    const r = 1 / Math.sqrt(inW);
    out[`layers.${idx}.weight`] = { shape: [outW, inW], data: Float32Array.from({ length: outW * inW }, () => (rng() * 2 - 1) * r) };
    out[`layers.${idx}.bias`] = { shape: [outW], data: Float32Array.from({ length: outW }, () => (rng() * 2 - 1) * r) };
  });
  return out;
}

/** The predictor's forward pass in float64, layer by layer, on the normalised embedding (dropout is the identity at inference). */
function referenceScore(t: ReturnType<typeof aestheticTensors>, emb: Float32Array): number {
  const n = Math.hypot(...emb);
  let x = Array.from(emb, (v) => v / n);
  AESTHETIC_LAYERS.forEach((idx) => {
    const w = t[`layers.${idx}.weight`], b = t[`layers.${idx}.bias`];
    const [outW, inW] = w.shape;
    x = Array.from({ length: outW }, (_, o) => { let s = b.data[o]; for (let i = 0; i < inW; i++) s += w.data[o * inW + i] * x[i]; return s; });
  });
  return x[0];
}

function writeAestheticSafetensors(file: string, t: ReturnType<typeof aestheticTensors>): string {
  writeSafetensors(file, Object.fromEntries(Object.entries(t).map(([k, v]) => [k, f32(v.shape, v.data)])));
  return file;
}

function writeAestheticPth(file: string, t: ReturnType<typeof aestheticTensors>, prefix = ''): string {
  const specs: Record<string, TensorSpec> = {};
  Object.entries(t).forEach(([k, v], i) => (specs[`${prefix}${k}`] = { storage: { key: String(i), dtype: 'F32', data: v.data }, shape: v.shape }));
  writeTorchFile(file, specs);
  return file;
}

test('the aesthetic predictor scores as its float64 forward pass, read from safetensors and from a .pth alike', () => {
  const t = aestheticTensors(3);
  const dir = tmp();
  const rng = mulberry32(9);
  const embs = Array.from({ length: 8 }, () => Float32Array.from({ length: 768 }, () => rng() * 2 - 1));
  const files = [writeAestheticSafetensors(path.join(dir, 'aesthetic.safetensors'), t), writeAestheticPth(path.join(dir, 'aesthetic-model.pth'), t), writeAestheticPth(path.join(dir, 'prefixed.pth'), t, 'mlp.')];
  for (const file of files) {
    const p = loadAestheticPredictor(file);
    for (const e of embs) {
      const want = referenceScore(t, e);
      assert.ok(Math.abs(aestheticScore(p, e) - want) <= 1e-5 * (1 + Math.abs(want)), `${path.basename(file)}: ${aestheticScore(p, e)} vs ${want}`);
    }
    // the score reads the direction only: a scaled embedding scores the same
    assert.ok(Math.abs(aestheticScore(p, embs[0].map((v) => v * 7)) - aestheticScore(p, embs[0])) < 1e-5);
  }
});

const wide: Backbone = { ...statsBackbone, id: 'test:768', dim: 768, label: 'test 768' };

test('aesthetic weights: missing, of another shape, or without the predictor\'s names, each say what to do', async () => {
  const dir = tmp();
  const missing = (e: Error) => e.message.includes('sac+logos+ava1-l14-linearMSE.pth') && e.message.includes('trl-lib/ddpo-aesthetic-predictor') && e.message.includes(path.join(dir, 'exp', 'reward', 'priors')) && e.message.includes(path.join(dir, 'cache', 'priors'));
  const where = { experimentDir: path.join(dir, 'exp'), cacheDir: path.join(dir, 'cache', 'models') };
  await assert.rejects(openPrior('aesthetic', wide, { ...where, offline: true }), (e: Error) => missing(e) && /downloads are off \(offline\)/.test(e.message));
  await assert.rejects(openPrior('aesthetic', wide, { ...where, baseUrl: 'http://127.0.0.1:1' }), (e: Error) => missing(e) && /the Hub did not give them \(Could not reach the Hub/.test(e.message));
  const t = aestheticTensors(1);
  const bad = { ...t, 'layers.2.weight': { shape: [64, 1024], data: new Float32Array(64 * 1024) } };
  assert.throws(() => loadAestheticPredictor(writeAestheticSafetensors(path.join(dir, 'bad.safetensors'), bad)), /"layers.2.weight" is \[64, 1024\], the aesthetic predictor's is \[128, 1024\]/);
  const other = Object.fromEntries(Object.entries(t).map(([k, v]) => [k.replace('layers', 'net'), v]));
  assert.throws(() => loadAestheticPredictor(writeAestheticSafetensors(path.join(dir, 'other.safetensors'), other)), /no tensor "layers.0.weight"/);
});

test('the aesthetic prior refuses a backbone whose embeddings are not 768 wide, naming ViT-L/14', async () => {
  const exp = tmp();
  fs.mkdirSync(path.join(exp, 'reward', 'priors'), { recursive: true });
  writeAestheticSafetensors(path.join(exp, 'reward', 'priors', 'aesthetic.safetensors'), aestheticTensors(2));
  await assert.rejects(openPrior('aesthetic', statsBackbone, { experimentDir: exp }), (e: Error) => /768-wide/.test(e.message) && /gives 31/.test(e.message) && /clip-vit-large-patch14/.test(e.message));
  await assert.rejects(openPrior('clip_score', statsBackbone), /no text tower/);
  await assert.rejects(openPrior('shape_taste', { ...statsBackbone, id: 'test:other', label: 'other' }), /built-in shape features/);
});

test('New Experiment offers the priors that fit the backbone, read from its files: each one offered opens on it, each one left out is refused', async () => {
  const root = tmp();
  const folder = (name: string, o: Parameters<typeof writeTestClipFolder>[1]) => ({ id: name, path: writeTestClipFolder(path.join(root, name), o) });
  const cases = [
    { ref: { id: 'builtin' }, want: ['shape_taste'] },
    { ref: { id: 'embedded:tiny-clip' }, want: ['clip_score'] },
    { ref: folder('vit-l-like', { proj: 768 }), want: ['aesthetic', 'clip_score'] },
    { ref: folder('vit-l-image-only', { proj: 768, towers: 'image-only' }), want: ['aesthetic'] },
    { ref: folder('text-tower-without-tokenizer', { proj: 768, tokenizer: 'none' }), want: ['aesthetic'] },
    { ref: folder('combined', { towers: 'combined' }), want: ['clip_score'] },
    { ref: folder('plain', { towers: 'plain', tokenizer: 'none' }), want: [] },
  ];
  const exp = tmp();
  fs.mkdirSync(path.join(exp, 'reward', 'priors'), { recursive: true });
  writeAestheticSafetensors(path.join(exp, 'reward', 'priors', 'aesthetic.safetensors'), aestheticTensors(3));
  for (const c of cases) {
    const offered = fittingPriors(localBackboneTraits(c.ref));
    assert.deepEqual(offered, c.want, c.ref.id);
    const backbone = await openBackbone(c.ref);
    try {
      for (const name of PRIOR_NAMES) {
        const opened = openPrior(name, backbone, { experimentDir: exp, offline: true });
        if (offered.includes(name)) await assert.doesNotReject(opened, `${name} on ${c.ref.id}`);
        else await assert.rejects(opened, Error, `${name} on ${c.ref.id}`);
      }
    } finally {
      await backbone.dispose?.();
    }
  }
  assert.throws(() => localBackboneTraits({ id: 'owner/not-downloaded' }), /download it first/);
});

test('clip_score is 100·max(cos, 0) of the image and prompt embeddings', async () => {
  const text = { embed: async (ps: string[]) => ps.map(() => Float32Array.of(1, 0)) };
  const p = await openPrior('clip_score', { id: 'test:2d', dim: 2, embed: async () => [], text });
  assert.ok(Math.abs(p.score(Float32Array.of(1, 1), Float32Array.of(1, 0)) - 100 / Math.SQRT2) < 1e-9);
  assert.equal(p.score(Float32Array.of(-1, 0.1), Float32Array.of(1, 0)), 0);
});

test('"reward": "aesthetic" and "clip_score" in ddpo.json score with the experiment\'s backbone', async () => {
  for (const reward of ['aesthetic', 'clip_score', 'shape_taste']) assert.equal(parseDdpoConfig({ reward }).config.reward, reward);
  assert.throws(() => parseDdpoConfig({ reward: 'aesthetics' }), /"aesthetic", "clip_score", "shape_taste"/);
  const ws = tmp();
  const clip = writeTestClipFolder(path.join(ws, 'clip'), { proj: 768 });
  const store = new ExperimentStore(ws);
  await store.create('pretty', { baseModel: { id: 'x', path: '/nowhere' }, prompts: ['a shape'], rewardBackbone: { id: 'test-clip', path: clip } });
  const dir = store.dirOf('pretty');
  const rng = mulberry32(4);
  const images = Array.from({ length: 4 }, () => renderShape(randomShape(rng), 32));
  const prompts = images.map(() => 'a shape');
  // an empty cache and no downloads: the experiment's own reward/priors/ is all there is
  const open = { cacheDir: path.join(ws, 'cache', 'models'), offline: true };
  await assert.rejects(makeReward('aesthetic', dir, undefined, open), /aesthetic predictor's weights: none are on this machine and downloads are off/);
  const t = aestheticTensors(5);
  fs.mkdirSync(path.join(dir, 'reward', 'priors'), { recursive: true });
  writeAestheticPth(path.join(dir, 'reward', 'priors', 'sac+logos+ava1-l14-linearMSE.pth'), t);
  const backbone = await openBackbone({ id: 'test-clip', path: clip });
  const embs = await backbone.embed(images);
  const textEmbs = await backbone.text!.embed(prompts);
  for (const [name, want] of [['aesthetic', embs.map((e) => referenceScore(t, e))], ['clip_score', embs.map((e, i) => 100 * Math.max(0, cosine64(e, textEmbs[i])))]] as const) {
    const reward = await makeReward(name, dir, undefined, open);
    const got = await reward(images, prompts, images.map(() => ({})));
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= 1e-4 * (1 + Math.abs(want[i])), `${name} image ${i}: ${g} vs ${want[i]}`));
    await reward.release?.();
  }
  await backbone.dispose?.();
});

test('without weights on this machine, the aesthetic predictor\'s are fetched from the Hub repo once (only its weights file), then read offline', async () => {
  const repo = tmp();
  const t = aestheticTensors(6);
  writeAestheticPth(path.join(repo, 'aesthetic-model.pth'), t);
  fs.writeFileSync(path.join(repo, 'README.md'), 'the aesthetic predictor');
  const hub = await startMockHub({ root: repo });
  const cache = path.join(tmp(), 'models');
  try {
    const lines: string[] = [];
    const p = await openPrior('aesthetic', wide, { cacheDir: cache, baseUrl: hub.url, onLog: (l) => lines.push(l) });
    const e = Float32Array.from({ length: 768 }, (_, i) => Math.sin(i));
    assert.ok(Math.abs(p.score(e) - referenceScore(t, e)) < 1e-5);
    assert.deepEqual(lines, [`downloading the aesthetic predictor's weights from trl-lib/ddpo-aesthetic-predictor into ${cachedModelDir(cache, 'trl-lib/ddpo-aesthetic-predictor')}`]);
    assert.deepEqual(hub.requests.filter((r) => r.path.includes('/resolve/')).map((r) => path.basename(r.path)), ['aesthetic-model.pth']);
    const before = hub.requests.length;
    const again = await openPrior('aesthetic', wide, { cacheDir: cache, offline: true });
    assert.equal(again.score(e), p.score(e));
    assert.equal(hub.requests.length, before);
  } finally {
    await hub.close();
  }
});

function cosine64(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
}

test('aesthetic weights that are a .pth with a forbidden global, or cut short, stop reward training before anything is written; the previous model is kept', async () => {
  const ws = tmp();
  const clip = writeTestClipFolder(path.join(ws, 'clip'), { proj: 768 });
  const store = new ExperimentStore(ws);
  await store.create('pretty', { baseModel: { id: 'x', path: '/nowhere' }, prompts: ['a shape'], rewardBackbone: { id: 'test-clip', path: clip } });
  const dir = store.dirOf('pretty');
  makeSimulatedExperiment(dir, { pairs: 24, seed: 2, imagesPerPrompt: 8 });
  const backbone = await openBackbone({ id: 'test-clip', path: clip });
  await trainExperimentReward(dir, { backbone, prior: 'none' });
  const card = fs.readFileSync(path.join(dir, 'reward', 'card.json'), 'utf8');
  const priors = path.join(dir, 'reward', 'priors');
  fs.mkdirSync(priors, { recursive: true });
  const pth = path.join(priors, 'sac+logos+ava1-l14-linearMSE.pth');
  const evil = new Pickle().proto().global('os', 'system');
  evil.tuple([() => evil.str('touch pwned')]);
  fs.writeFileSync(pth, torchArchive(evil.op(OP.REDUCE).stop().bytes(), []));
  await assert.rejects(trainExperimentReward(dir, { backbone, prior: 'aesthetic' }), (e: Error) => e.message.startsWith(`${pth}: the pickle names the global os.system`));
  const whole = fs.readFileSync(writeAestheticPth(pth, aestheticTensors(1)));
  fs.writeFileSync(pth, whole.subarray(0, whole.length >> 1));
  await assert.rejects(trainExperimentReward(dir, { backbone, prior: 'aesthetic' }), (e: Error) => e.message.startsWith(pth) && /download it again/.test(e.message));
  assert.equal(fs.readFileSync(path.join(dir, 'reward', 'card.json'), 'utf8'), card, 'the previous model is kept');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'reward')).filter((n) => n.endsWith('.safetensors')).length, 1, 'one head, the previous one');
  writeAestheticPth(pth, aestheticTensors(1));
  const { card: warm } = await trainExperimentReward(dir, { backbone, prior: 'aesthetic' });
  assert.equal(warm.head.prior?.name, 'aesthetic');
  assert.ok(warm.warmStart && warm.warmStart.points.length >= 1);
  await backbone.dispose?.();
});

test('aesthetic weights of a Hub download cut short (no completion marker) are not read: offline, they are reported missing', async () => {
  const dir = tmp();
  const cacheDir = path.join(dir, 'cache', 'models');
  const hubDir = cachedModelDir(cacheDir, 'trl-lib/ddpo-aesthetic-predictor');
  fs.mkdirSync(hubDir, { recursive: true });
  const whole = fs.readFileSync(writeAestheticPth(path.join(dir, 'whole.pth'), aestheticTensors(5)));
  fs.writeFileSync(path.join(hubDir, 'aesthetic-model.pth'), whole.subarray(0, whole.length >> 1));
  await assert.rejects(openPrior('aesthetic', wide, { cacheDir, offline: true }), (e: Error) => /the aesthetic reward needs the LAION aesthetic predictor's weights: none are on this machine and downloads are off \(offline\)/.test(e.message));
});
