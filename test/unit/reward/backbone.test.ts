import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors, toFloat32 } from '../../../src/core/safetensors';
import { loadOnnxBackbone, readPreprocess } from '../../../src/core/reward/onnxBackbone';
import { EmbeddingCache, type Backbone } from '../../../src/core/reward/backbone';
import { encodePng } from '../../../src/core/image/png';
import { renderShape } from '../../../src/core/reward/sim';
import { fixture, needsFixture } from '../fixtures';

const fixtures = fixture('reference-clip-vision');
const noFixtures = needsFixture('reference-clip-vision');

test('an ONNX CLIP vision tower reproduces its PyTorch oracle embeddings', { skip: noFixtures }, async () => {
  const bb = await loadOnnxBackbone(fixtures);
  const oracle = readSafetensors(path.join(fixtures, 'oracle.safetensors'));
  const embs = await bb.runPixels(toFloat32(oracle.get('pixel_values')!), 2);
  const want = toFloat32(oracle.get('image_embeds')!);
  assert.equal(bb.dim, 16);
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(embs[Math.floor(i / 16)][i % 16] - want[i]) < 1e-4, `embedding ${i}`);
  assert.equal(readPreprocess(fixtures).size, 32);
  const fromImage = await bb.embed([renderShape({ shape: 'disc', cx: 0.5, cy: 0.5, radius: 0.2, color: [200, 50, 50], background: [100, 100, 100] }, 48)]);
  assert.equal(fromImage[0].length, 16);
  await bb.dispose?.();
});

test('embeddings are cached by file content, so re-training does not re-run the encoder', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cache-'));
  const f = path.join(dir, 'a.png');
  fs.writeFileSync(f, encodePng({ ...renderShape({ shape: 'square', cx: 0.4, cy: 0.5, radius: 0.2, color: [10, 200, 30], background: [120, 120, 120] }, 16), channels: 3 }));
  let calls = 0;
  const counting: Backbone = { id: 'test:count', dim: 1, embed: async (imgs) => { calls += imgs.length; return imgs.map((i) => Float32Array.of(i.width)); } };
  const c1 = EmbeddingCache.forExperiment(dir, counting.id);
  assert.deepEqual([...(await c1.embedFiles(counting, [f, f]))[1]], [16]);
  c1.save();
  const c2 = EmbeddingCache.forExperiment(dir, counting.id);
  await c2.embedFiles(counting, [f]);
  assert.equal(calls, 1);
});

test('prompt embeddings are cached by the exact prompt text: prompts that differ only in case or spaces are embedded apart, a repeat is not re-run', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cache-'));
  const seen: string[] = [];
  // an embedding that tells the prompts apart: their length and their count of capitals
  const text = { embed: async (ps: string[]) => { seen.push(...ps); return ps.map((p) => Float32Array.of(p.length, p.replace(/[^A-Z]/g, '').length)); } };
  const c1 = EmbeddingCache.forExperiment(dir, 'test:text');
  const embs = await c1.embedPrompts(text, ['A red disc', 'a red disc', 'a red disc ']);
  assert.deepEqual(embs.map((e) => [...e]), [[10, 1], [10, 0], [11, 0]]);
  c1.save();
  const c2 = EmbeddingCache.forExperiment(dir, 'test:text');
  assert.deepEqual([...(await c2.embedPrompts(text, ['a red disc']))[0]], [10, 0]);
  assert.deepEqual(seen, ['A red disc', 'a red disc', 'a red disc '], 'the cached prompt is not embedded again');
});
