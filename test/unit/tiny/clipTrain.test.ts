/** Training the tiny CLIP with our own autodiff: the loss is CLIP's, its gradient is right, and it falls. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, emptyGraph, makeModel, makeTensor } from '../../../src/core/onnx/ir';
import { AdamW } from '../../../src/core/train/adamw';
import { mulberry32 } from '../../../src/core/random';
import { loadOnnxBackbone } from '../../../src/core/reward/onnxBackbone';
import { buildClipTrainingGraph, contrastiveLoss, TINY_CLIP_VISION, tinyClipTextConfig } from '../../../src/core/tiny/clipModel';
import { describes, drawClipBatch, matchTargets, renderClipItem, toImageRGB } from '../../../src/core/tiny/clipScenes';
import { trainTinyClip } from '../../../src/core/tiny/clipTrain';

const tinyClipVocab = join(__dirname, '../../../media/tiny-clip/vocab.json');
import { createGraphTrainer } from '../../../src/core/tiny/trainGraph';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import { CLIP_MEAN, CLIP_STD, toPixelValues } from '../../../src/core/reward/onnxBackbone';

// The loss in float64: -(Σ T1 ⊙ logsoftmax(s x̂ŷᵀ) + Σ T2 ⊙ logsoftmax(s ŷx̂ᵀ)) / 2B.
function referenceLoss(img: Float64Array, txt: Float64Array, logScale: number, t1: number[], t2: number[], B: number, P: number): number {
  const unit = (v: Float64Array) => Array.from({ length: B }, (_, i) => {
    const row = v.slice(i * P, (i + 1) * P);
    const n = Math.hypot(...row);
    return Array.from(row, (x) => x / n);
  });
  const x = unit(img), y = unit(txt), s = Math.exp(logScale);
  const logits = x.map((xi) => y.map((yj) => s * xi.reduce((a, v, k) => a + v * yj[k], 0)));
  const ce = (l: number[][], t: number[]) => l.reduce((sum, row, i) => {
    const mx = Math.max(...row), lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
    return sum + row.reduce((a, v, j) => a + t[i * B + j] * (v - lse), 0);
  }, 0);
  const lt = logits[0].map((_, j) => logits.map((row) => row[j]));
  return -(ce(logits, t1) + ce(lt, t2)) / (2 * B);
}

test('the contrastive loss graph is CLIP\'s soft-target InfoNCE, and its autodiff gradient matches finite differences', async () => {
  const B = 3, P = 4;
  const r = mulberry32(3);
  const rnd = (n: number) => Float32Array.from({ length: n }, () => 2 * r() - 1);
  const g = emptyGraph('loss');
  const b = new GraphBuilder(g);
  const img = rnd(B * P), txt = rnd(B * P);
  b.initializer(makeTensor('img', DataType.FLOAT, [B, P], Array.from(img)), true);
  b.initializer(makeTensor('txt', DataType.FLOAT, [B, P], Array.from(txt)), true);
  b.initializer(makeTensor('scale', DataType.FLOAT, [], [1.2]), true);
  const i2t = b.input('i2t', DataType.FLOAT, [B, B]), t2i = b.input('t2i', DataType.FLOAT, [B, B]);
  contrastiveLoss(b, 'img', 'txt', 'scale', i2t, t2i);
  g.outputs.push({ name: 'loss', elemType: DataType.FLOAT, shape: [] });
  const t1 = [1, 0, 0, 0, 0.5, 0.5, 0, 0.5, 0.5], t2 = [1, 0, 0, 0, 0.5, 0.5, 0, 0.5, 0.5];
  const trainer = await createGraphTrainer(makeModel(g, 17), ['img', 'txt', 'scale'], {}, 1);
  const { loss, grads } = await trainer.step(new Map([['i2t', { dims: [B, B], data: t1 }], ['t2i', { dims: [B, B], data: t2 }]]));
  await trainer.release();
  const f64 = (a: Float32Array) => Float64Array.from(a);
  assert.ok(Math.abs(loss - referenceLoss(f64(img), f64(txt), 1.2, t1, t2, B, P)) < 1e-5, `loss ${loss}`);
  const h = 1e-4;
  const numeric = (which: 'img' | 'txt', k: number) => {
    const at = (d: number) => {
      const a = f64(img), c = f64(txt);
      (which === 'img' ? a : c)[k] += d;
      return referenceLoss(a, c, 1.2, t1, t2, B, P);
    };
    return (at(h) - at(-h)) / (2 * h);
  };
  for (const which of ['img', 'txt'] as const) for (let k = 0; k < B * P; k++) {
    const want = numeric(which, k), got = grads.get(which)![k];
    assert.ok(Math.abs(got - want) < 1e-3 * Math.max(1, Math.abs(want)), `d loss / d ${which}[${k}]: autodiff ${got}, finite differences ${want}`);
  }
  const ds = (referenceLoss(f64(img), f64(txt), 1.2 + h, t1, t2, B, P) - referenceLoss(f64(img), f64(txt), 1.2 - h, t1, t2, B, P)) / (2 * h);
  assert.ok(Math.abs(grads.get('scale')![0] - ds) < 1e-3, `d loss / d logit_scale ${grads.get('scale')![0]} vs ${ds}`);
});

test('soft targets: each image spreads over the captions true of it, each caption over the images it describes', () => {
  const items = drawClipBatch(mulberry32(4), 4, 4);
  const { imageToText, textToImage } = matchTargets(items);
  const B = items.length;
  for (let i = 0; i < B; i++) {
    let row = 0, col = 0;
    for (let j = 0; j < B; j++) { row += imageToText[i * B + j]; col += textToImage[i * B + j]; }
    assert.ok(Math.abs(row - 1) < 1e-6 && Math.abs(col - 1) < 1e-6);
    assert.ok(imageToText[i * B + i] > 0);
    for (let j = 0; j < B; j++) assert.equal(imageToText[i * B + j] > 0, i === j || describes(items[j].claim, items[i]));
  }
  // a group shares its colours, so its other captions differ from the image in shape or size
  assert.ok(items.slice(0, 4).every((it) => it.scene.colour === items[0].scene.colour && it.scene.background === items[0].scene.background));
});

test('AdamW steps on one batch lower the contrastive loss of both towers', async () => {
  const vision = { ...TINY_CLIP_VISION, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, projection_dim: 8 };
  const text = { ...tinyClipTextConfig(600, 599, 16), hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, projection_dim: 8 };
  const { model, weights } = buildClipTrainingGraph(vision, text, 1);
  assert.ok(weights.includes('logit_scale') && weights.includes('vision_model.embeddings.class_embedding') && weights.includes('text_projection.weight'));
  const B = 8;
  const trainer = await createGraphTrainer(model, weights, { dims: { batch: B, sequence: 16 } }, 1);
  const rand = mulberry32(5), gauss = new GaussianRng(5);
  const items = drawClipBatch(rand, 2, 4);
  const pixels = toPixelValues(items.map((it) => toImageRGB(renderClipItem(it, rand, gauss))), { size: 32, mean: CLIP_MEAN, std: CLIP_STD });
  const ids = items.flatMap((_, i) => [598, 1 + i, 2 + i, 599, ...new Array(12).fill(599)]);
  const t = matchTargets(items);
  const feeds = new Map([
    ['pixel_values', { dims: [B, 3, 32, 32], data: pixels }], ['input_ids', { dims: [B, 16], data: ids }],
    ['image_to_text', { dims: [B, B], data: t.imageToText }], ['text_to_image', { dims: [B, B], data: t.textToImage }],
  ]);
  const opt = new AdamW({ lr: 3e-3, weightDecay: 0 });
  const losses: number[] = [];
  for (let i = 0; i < 12; i++) {
    const { loss, grads } = await trainer.step(feeds);
    assert.equal(grads.size, weights.length);
    losses.push(loss);
    opt.update(trainer.params, grads);
  }
  await trainer.release();
  assert.ok(losses[11] < 0.7 * losses[0], `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
});

test('trainTinyClip writes a folder in the Hub layout that the reward backbone loader opens with both towers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiny-clip-'));
  try {
    const r = await trainTinyClip({ out: dir, steps: 2, seed: 0, batch: 8, lr: 1e-3, warmup: 1, threads: 1, log: () => {} });
    assert.equal(r.losses.length, 1);
    for (const f of ['onnx/vision_model.onnx', 'onnx/text_model.onnx', 'config.json', 'preprocessor_config.json', 'tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'training.json']) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    assert.equal(JSON.parse(readFileSync(join(dir, 'training.json'), 'utf8')).steps, 2);
    // the embedded model's recipe keeps its vocabulary
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8'))), Object.keys(JSON.parse(readFileSync(tinyClipVocab, 'utf8'))));
    const clip = await loadOnnxBackbone(dir);
    try {
      assert.equal(clip.dim, 32);
      assert.ok(clip.text, 'the text tower opens');
      const [t] = await clip.text.embed(['a red circle on a blue background']);
      assert.equal(t.length, 32);
    } finally { await clip.dispose?.(); }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('trainTinyClip resizes the towers as told, and the folder, its config and training.json say so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiny-clip-'));
  try {
    await trainTinyClip({ out: dir, steps: 1, seed: 0, batch: 8, lr: 1e-3, warmup: 1, threads: 1, log: () => {}, towers: { width: 32, visionLayers: 1, projection: 16 }, groups: ['between', 'size', 'blob'] });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual([cfg.projection_dim, cfg.vision_config.hidden_size, cfg.vision_config.num_hidden_layers, cfg.text_config.hidden_size, cfg.text_config.intermediate_size], [16, 32, 1, 32, 64]);
    const training = JSON.parse(readFileSync(join(dir, 'training.json'), 'utf8'));
    assert.deepEqual([training.groups, training.towers], [['between', 'size', 'blob'], { width: 32, visionLayers: 1, projection: 16 }]);
    assert.ok('blob</w>' in JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')), 'blob groups put "blob" in the vocabulary');
    const clip = await loadOnnxBackbone(dir);
    try {
      const [image] = await clip.embed([{ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(90) }]);
      const [text] = await clip.text!.embed(['a big red circle on a blue background']);
      assert.deepEqual([clip.dim, image.length, text.length], [16, 16, 16]);
    } finally { await clip.dispose?.(); }
    await assert.rejects(trainTinyClip({ out: dir, steps: 1, seed: 0, batch: 8, lr: 1e-3, towers: { width: 30 } }), /width 30 must be a multiple of 4/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
