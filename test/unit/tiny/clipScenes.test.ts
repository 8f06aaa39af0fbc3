/** The tiny CLIP's training batches: the group kinds, shapes between two shapes, and the embedded model's own recipe. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import { mulberry32 } from '../../../src/core/random';
import { CLEAN, CLIP_SIZES, describes, drawClipBatch, morphCoverage, morphItem, pooledDecode, renderClipItem, sizeClass, toImageRGB, TRAIN_AUGMENT } from '../../../src/core/tiny/clipScenes';
import { fitShape } from '../../../src/core/tiny/fidelity';
import { sceneCoverage, SHAPES, type Scene } from '../../../src/core/tiny/scenes';

const scene = (shape: Scene['shape']): Scene => ({ shape, colour: 'red', background: 'blue', size: 'big', position: 'centre', cx: 0.47, cy: 0.53, radius: 0.27, captionHasSize: false, captionHasPosition: false });

test('a shape 0 or 1 of the way to another is exactly the one or the other shape of the scenes\' renderer', () => {
  for (const from of SHAPES) for (const toward of SHAPES.filter((s) => s !== from)) {
    assert.deepEqual(morphCoverage(scene(from), { from, toward, t: 0 }), sceneCoverage(scene(from)), `${from} at t = 0`);
    assert.deepEqual(morphCoverage(scene(from), { from, toward, t: 1 }), sceneCoverage(scene(toward)), `${toward} at t = 1`);
  }
});

test('between two shapes the caption names the nearer one, and the geometric test sees it there whenever it is clearly nearer', () => {
  const rand = mulberry32(3), gauss = new GaussianRng(3);
  let clear = 0, agree = 0;
  for (const from of SHAPES) for (const toward of SHAPES.filter((s) => s !== from)) {
    for (const t of [0, 0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 1]) {
      const item = morphItem(rand, { from, toward, t }, 'yellow', 'purple', 0.25);
      assert.equal(item.claim.shape, t < 0.5 ? from : toward);
      assert.match(item.caption, new RegExp(` ${item.claim.shape} on `));
      const img = toImageRGB(renderClipItem(item, rand, gauss, { ...CLEAN, decoded: 1 }));
      clear++;
      if (fitShape(img)?.shape === item.claim.shape) agree++;
    }
  }
  assert.ok(agree / clear >= 0.9, `the geometric test agrees with ${agree} of ${clear} captions`);
  // halfway, the outline is neither: it covers more than the one's and less than the other's pixels outside their overlap
  const half = morphCoverage(scene('square'), { from: 'square', toward: 'circle', t: 0.5 });
  const sq = sceneCoverage(scene('square')), ci = sceneCoverage(scene('circle'));
  assert.notDeepEqual(half, sq);
  assert.notDeepEqual(half, ci);
});

test('each group kind leaves one thing to tell its captions apart', () => {
  const items = drawClipBatch(mulberry32(9), 40, 4, ['shape', 'between', 'size', 'free-off']);
  const group = (g: number) => items.slice(4 * g, 4 * g + 4);
  for (let g = 0; g < 40; g++) {
    const its = group(g);
    assert.ok(its.every((it) => it.scene.colour === its[0].scene.colour && it.scene.background === its[0].scene.background), 'a group shares its colours');
    const kind = g % 4;
    if (kind === 0) {
      assert.equal(new Set(its.slice(0, 3).map((it) => it.scene.shape)).size, 3, 'shape groups show every shape');
      assert.ok(Math.max(...its.map((it) => it.scene.radius)) <= 1.25 * Math.min(...its.map((it) => it.scene.radius)), 'at one size');
      assert.ok(its.every((it) => !it.morph));
    } else if (kind === 1) {
      const pairs = new Set(its.map((it) => `${it.morph!.from}>${it.morph!.toward}`));
      assert.equal(pairs.size, 1, 'one pair of shapes');
      assert.deepEqual(its.map((it) => it.morph!.t).map((t) => Math.floor(t * 4)), [0, 1, 2, 3], 'spread from one to the other');
    } else if (kind === 2) {
      assert.equal(new Set(its.map((it) => it.scene.shape)).size, 1, 'one shape');
      const words = its.map((it) => sizeClass(it.scene.radius));
      assert.equal(new Set(words).size, 4, `four size words: ${words.join(', ')}`);
      assert.ok(words.every((w) => w && CLIP_SIZES.includes(w)));
      assert.ok(its.every((it) => it.claim.size === undefined || it.claim.size === sizeClass(it.scene.radius)), 'a named size is the true one');
    } else {
      assert.ok(its.every((it) => !it.morph || it.morph.t < 0.3), 'free-off items stay nearer their own shape');
    }
  }
  assert.ok(items.filter((_, i) => Math.floor(i / 4) % 4 === 2).filter((it) => it.claim.size).length >= 0.8 * 40, 'size groups mostly name the size');
  assert.ok(items.filter((_, i) => Math.floor(i / 4) % 4 === 3).some((it) => it.morph), 'free-off groups hold some shapes a little off');
});

test('the default batches are the embedded model\'s recipe: shape groups and free groups, nothing between shapes', () => {
  const items = drawClipBatch(mulberry32(11), 16, 4);
  assert.ok(items.every((it) => !it.morph));
  for (let g = 0; g < 16; g += 2) assert.equal(new Set(items.slice(4 * g, 4 * g + 3).map((it) => it.scene.shape)).size, 3);
  // rendering goes through the same path with or without an outline between shapes
  const img = renderClipItem(items[0], mulberry32(1), new GaussianRng(1), TRAIN_AUGMENT);
  assert.equal(pooledDecode(img).data.length, 32 * 32 * 3);
});

test('blob groups: two shapes and two lumpy outlines between shapes, captioned "blob", which no shape caption describes', () => {
  const items = drawClipBatch(mulberry32(21), 12, 4, ['blob']);
  for (let g = 0; g < 12; g++) {
    const [a, b, c, d] = items.slice(4 * g, 4 * g + 4);
    assert.ok(!a.blob && !b.blob && a.scene.shape !== b.scene.shape, 'two different shapes');
    for (const blob of [c, d]) {
      assert.ok(blob.blob && blob.morph && blob.morph.t >= 0.3 && blob.morph.t <= 0.7, 'halfway between two shapes');
      assert.match(blob.caption, / blob on /);
      assert.ok(describes(blob.claim, blob) && !describes(blob.claim, a) && !describes(a.claim, blob) && !describes(b.claim, blob));
    }
  }
  // rendered lumpier than the shapes: further from every template of the geometric test
  const rand = mulberry32(2), gauss = new GaussianRng(2);
  const bestIou = (i: number) => Math.max(...Object.values(fitShape(toImageRGB(renderClipItem(items[i], rand, gauss)))!.iou));
  const shapes = items.map((_, i) => i).filter((i) => !items[i].blob), blobs = items.map((_, i) => i).filter((i) => items[i].blob);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(mean(blobs.map(bestIou)) < mean(shapes.map(bestIou)) - 0.03, `blobs ${mean(blobs.map(bestIou)).toFixed(3)}, shapes ${mean(shapes.map(bestIou)).toFixed(3)}`);
});

test('shape-size groups: two shapes, each at two size words, so shape and size both tell the captions apart', () => {
  const items = drawClipBatch(mulberry32(31), 20, 4, ['shape-size']);
  for (let g = 0; g < 20; g++) {
    const its = items.slice(4 * g, 4 * g + 4);
    const key = (i: number) => `${its[i].scene.shape} ${sizeClass(its[i].scene.radius)}`;
    assert.equal(new Set([0, 1, 2, 3].map(key)).size, 4, `four shape x size combinations: ${[0, 1, 2, 3].map(key).join(', ')}`);
    assert.equal(new Set(its.map((it) => it.scene.shape)).size, 2);
    assert.equal(new Set(its.map((it) => sizeClass(it.scene.radius))).size, 2);
    assert.ok(its.every((it) => it.claim.size === undefined || it.claim.size === sizeClass(it.scene.radius)));
  }
});
