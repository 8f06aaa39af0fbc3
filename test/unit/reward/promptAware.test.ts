import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Backbone } from '../../../src/core/reward/backbone';
import { statsBackbone } from '../../../src/core/reward/backbone';
import { trainExperimentReward, evalExperimentReward, heldOutUtilityAccuracy, isHeldOut } from '../../../src/core/reward/experiment';
import { headInput } from '../../../src/core/reward/headInput';
import { loadRewardModel, rewardPaths } from '../../../src/core/reward/model';
import { openRewardScorer } from '../../../src/core/reward/scorer';
import { makeReward } from '../../../src/core/ddpo/rewards';
import { PreferenceStore, readRatings } from '../../../src/core/reward/store';
import { encodePng } from '../../../src/core/image/png';
import type { ImageRGB } from '../../../src/core/image/rgb';
import { mulberry32 } from '../../../src/core/random';
import { f32, writeSafetensors } from '../../../src/core/safetensors';
import { ExperimentStore } from '../../../src/core/experiment/store';
import { EMBEDDED_MODEL_ID } from '../../../src/core/experiment/modelDir';
import { renderShape } from '../../../src/core/reward/sim';
import { writeTestClipFolder } from './helpers/clipFolder';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-prompt-aware-'));
const PROMPTS = ['a bright scene', 'a dark scene'];
const grey = (v: number): ImageRGB => ({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(v) });

/**
 * A backbone that sees brightness (signed around mid-grey) beside three fixed directions, and whose text tower puts
 * "bright" and "dark" on opposite sides of it: a CLIP in miniature for a taste that flips with the prompt.
 */
function brightnessBackbone(withText: boolean): Backbone {
  return {
    id: `test:brightness${withText ? '+text' : ''}`, dim: 4, label: 'test brightness',
    embed: async (images) => images.map((img) => Float32Array.of(img.data[0] / 255 - 0.5, 0.3, 0.2, -0.1)),
    text: withText ? { embed: async (prompts) => prompts.map((p) => Float32Array.of(p.includes('bright') ? 1 : -1, 0.2, 0.1, 0.3)) } : undefined,
  };
}

/**
 * Grey images, the same set for both prompts (so no image tells which prompt it was made for), and a rater who wants
 * them brighter for "bright" and darker for "dark" (a tie within 2 grey levels).
 */
function oppositeTastes(dir: string, pairs: number, seed: number): void {
  const rng = mulberry32(seed);
  const levels = Array.from({ length: 32 }, (_, k) => {
    const v = Math.floor(rng() * 256);
    const rel = `samples/seed-${k}.png`;
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), encodePng({ ...grey(v), channels: 3 }));
    return { rel, v };
  });
  const store = PreferenceStore.open(dir);
  try {
    for (let i = 0; i < pairs; i++) {
      const p = i % 2, a = levels[Math.floor(rng() * 32)], b = levels[Math.floor(rng() * 32)];
      if (a === b) continue;
      const better = (p === 0 ? a.v - b.v : b.v - a.v);
      const choice = Math.abs(a.v - b.v) <= 2 ? 'tie' : better > 0 ? 'left' : 'right';
      store.append({ pairId: `pair-${i}`, prompt: PROMPTS[p], left: a.rel, right: b.rel, choice, rater: 'simulated', sideOrder: 'ab' });
    }
  } finally { store.close(); }
}

test('the rater\'s own taste scored on the held-out ratings: the ceiling a reward card is read against', () => {
  const dir = tmp();
  oppositeTastes(dir, 200, 3);
  const taste = (img: ImageRGB, prompt: string) => (prompt.includes('bright') ? 1 : -1) * img.data[0];
  assert.equal(heldOutUtilityAccuracy(dir, taste), 1);
  assert.equal(heldOutUtilityAccuracy(dir, (img, prompt) => -taste(img, prompt)), 0);
  // a prompt-blind taste is right on one prompt's pairs only; ties and training pairs are not scored
  const held = readRatings(dir).ratings.filter((r) => r.choice !== 'tie' && isHeldOut(r.pairId, 0.2));
  const bright = held.filter((r) => r.prompt === PROMPTS[0]).length;
  assert.ok(bright > 0 && bright < held.length);
  assert.equal(heldOutUtilityAccuracy(dir, (img) => img.data[0]), bright / held.length);
  assert.equal(heldOutUtilityAccuracy(dir, (img) => img.data[0], 1), readRatings(dir).ratings.filter((r) => r.choice !== 'tie' && r.prompt === PROMPTS[0]).length / readRatings(dir).ratings.filter((r) => r.choice !== 'tie').length);
});

test('a prompt-aware head learns a taste that flips with the prompt, which an image-only head cannot', async () => {
  const dir = tmp();
  oppositeTastes(dir, 400, 7);
  const accuracy: Record<string, number> = {};
  for (const withText of [false, true]) {
    for (const kind of ['linear', 'mlp'] as const) {
      const { card } = await trainExperimentReward(dir, { backbone: brightnessBackbone(withText), kind, seed: 1 });
      assert.equal(card.head.features, withText ? 'image-prompt-v1' : 'image');
      assert.equal(card.head.inputDim, withText ? 13 : 4);
      assert.ok(card.data.heldOutComparisons >= 60, `${card.data.heldOutComparisons} held out`);
      accuracy[`${withText ? 'prompt' : 'image'}-${kind}`] = card.heldOut.accuracy;
    }
  }
  // with data seeds 7-11: image-only 41-54%, prompt-aware 100% (both head kinds)
  for (const kind of ['linear', 'mlp']) {
    assert.ok(accuracy[`prompt-${kind}`] >= 0.9, `prompt-aware ${kind} head: ${JSON.stringify(accuracy)}`);
    assert.ok(accuracy[`image-${kind}`] <= 0.65, `image-only ${kind} head cannot beat chance by much: ${JSON.stringify(accuracy)}`);
  }
  // prompt embeddings are cached per prompt beside the image embeddings
  const cache = JSON.parse(fs.readFileSync(path.join(rewardPaths(dir).dir, 'embeddings', 'test_brightness_text.json'), 'utf8')) as Record<string, number[]>;
  assert.equal(Object.keys(cache).filter((k) => k.startsWith('prompt:')).length, 2);
});

test('the head input of a prompt-aware layout: unit image and prompt embeddings, their product and cosine', () => {
  const x = headInput('image-prompt-v1', Float32Array.of(3, 4), Float32Array.of(0, 2));
  assert.deepEqual(Array.from(x).map((v) => +v.toFixed(6)), [0.6, 0.8, 0, 1, 0, 0.8, 0.8]);
  assert.equal(headInput('image', Float32Array.of(3, 4)).length, 2);
  assert.throws(() => headInput('image-prompt-v1', Float32Array.of(1, 2)), /needs the prompt's text embedding/);
});

test('the learned DDPO reward scores (image, prompt) on the CLIP backbone the head was trained on, which the head and card record', async () => {
  const dir = tmp();
  const clip = writeTestClipFolder(path.join(dir, 'clip'));
  await new ExperimentStore(dir).create('e', { baseModel: { id: 'some-sd' }, prompts: ['a red circle', 'a blue square'], rewardBackbone: { id: 'test-clip', path: clip } });
  const exp = path.join(dir, '.ddpo', 'e');
  const store = PreferenceStore.open(exp);
  const rng = mulberry32(3);
  for (let i = 0; i < 40; i++) {
    const rel = (k: number) => `samples/${i}/${k}.png`;
    for (const k of [0, 1]) {
      fs.mkdirSync(path.join(exp, 'samples', String(i)), { recursive: true });
      fs.writeFileSync(path.join(exp, rel(k)), encodePng({ ...renderShape({ shape: k ? 'disc' : 'square', cx: 0.5, cy: 0.5, radius: 0.1 + rng() * 0.3, color: [200, 40, 40], background: [20, 20, 120] }, 32), channels: 3 }));
    }
    store.append({ pairId: `p${i}`, prompt: i % 2 ? 'a red circle' : 'a blue square', left: rel(0), right: rel(1), choice: rng() < 0.7 ? 'right' : 'left', rater: 'simulated', sideOrder: 'ab' });
  }
  store.close();
  const opened: string[] = [];
  const { card } = await trainExperimentReward(exp, { open: { onOpened: (b) => opened.push(b.label!) } });
  assert.deepEqual(opened, ['test-clip (image + text)']);
  assert.equal(card.backboneLabel, 'test-clip (image + text)');
  assert.deepEqual(card.backboneSource, { id: 'test-clip', path: clip });
  assert.match(card.backbone, /^clip:[0-9a-f]{16}$/);
  assert.equal(card.head.features, 'image-prompt-v1');
  const saved = loadRewardModel(exp);
  assert.deepEqual([saved.backbone, saved.backboneSource, saved.features], [card.backbone, card.backboneSource, 'image-prompt-v1']);

  const logs: string[] = [], sessions: string[] = [];
  // the job's providers (the policy's) open the backbone's sessions
  const reward = await makeReward('learned', exp, undefined, { onLog: (l) => logs.push(l), providers: { candidates: ['cpu'], onOpened: (what, o) => sessions.push(`${what} on ${o.ep}`) } });
  assert.deepEqual(sessions, ['onnx/vision_model.onnx on cpu', 'onnx/text_model.onnx on cpu']);
  const img = renderShape({ shape: 'disc', cx: 0.5, cy: 0.5, radius: 0.3, color: [200, 40, 40], background: [20, 20, 120] }, 32);
  const [asCircle, asSquare] = await reward([img, img], ['a red circle', 'a blue square'], [{}, {}]);
  assert.notEqual(asCircle, asSquare, 'the same image scores differently under another prompt');
  assert.match(logs.join('\n'), /learned reward: linear head on test-clip \(image \+ text\) \(on cpu\), reading each image's prompt/);
  const scorer = await openRewardScorer(exp);
  assert.deepEqual(await scorer.score([img, img], ['a red circle', 'a blue square']), [asCircle, asSquare]);
  await scorer.release();
  await reward.release?.();
  // `reward eval` reopens the backbone the head records and reproduces the card's held-out figures
  const ev = await evalExperimentReward(exp);
  assert.deepEqual([ev.heldOut.decisive, ev.heldOut.accuracy], [card.heldOut.decisive, card.heldOut.accuracy]);
  // the backbone's folder moves: the error's advice (say where it is now in experiment.json) is what lets the head score again
  const moved = path.join(dir, 'clip-moved');
  fs.renameSync(clip, moved);
  await assert.rejects(openRewardScorer(exp), /reward backbone test-clip: its folder .*clip does not exist; .*"rewardBackbone": \{ "id": "test-clip", "path": "\/path\/to\/folder" \}/);
  const expFile = path.join(exp, 'experiment.json');
  fs.writeFileSync(expFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(expFile, 'utf8')), rewardBackbone: { id: 'test-clip', path: moved } }));
  const again = await openRewardScorer(exp);
  assert.deepEqual(await again.score([img, img], ['a red circle', 'a blue square']), [asCircle, asSquare]);
  await again.release();
});

test('an old reward model (image-only head, no backbone source) on an old experiment (no rewardBackbone) still loads and scores', async () => {
  const dir = tmp();
  await new ExperimentStore(dir).create('old', { baseModel: { id: EMBEDDED_MODEL_ID }, prompts: ['a shape'] });
  const exp = path.join(dir, '.ddpo', 'old');
  assert.equal(JSON.parse(fs.readFileSync(path.join(exp, 'experiment.json'), 'utf8')).rewardBackbone, undefined);
  fs.mkdirSync(rewardPaths(exp).dir, { recursive: true });
  const w = new Float32Array(31);
  w[19] = 1; // foreground area
  // written as heads were before they recorded their feature layout and backbone source
  writeSafetensors(path.join(rewardPaths(exp).dir, 'head.safetensors'), { 'norm.mean': f32([31], new Float32Array(31)), 'norm.std': f32([31], new Float32Array(31).fill(1)), 'head.w': f32([1, 31], w) },
    { format: 'ddpo-reward-head', kind: 'linear', backbone: statsBackbone.id });
  const saved = loadRewardModel(exp);
  assert.deepEqual([saved.features, saved.backboneSource], ['image', undefined]);
  const reward = await makeReward('learned', exp);
  const small = renderShape({ shape: 'disc', cx: 0.5, cy: 0.5, radius: 0.1, color: [200, 40, 40], background: [20, 20, 120] }, 32);
  const big = renderShape({ shape: 'disc', cx: 0.5, cy: 0.5, radius: 0.4, color: [200, 40, 40], background: [20, 20, 120] }, 32);
  const [s, b] = await reward([small, big], [], [{}, {}]);
  assert.ok(b > s, `the bigger shape scores higher (${b} vs ${s})`);
});

test('warm-started from clip_score, the prompt-aware head reads each image against its prompt from the first ratings', async () => {
  const dir = tmp();
  oppositeTastes(dir, 200, 8);
  const { card } = await trainExperimentReward(dir, { backbone: brightnessBackbone(true), prior: 'clip_score', seed: 1 });
  const w = card.warmStart!;
  assert.equal(card.head.prior?.name, 'clip_score');
  // in this world the prompt's direction is the taste: brighter matches "bright", darker matches "dark"
  assert.ok(w.priorAccuracy >= 0.9, `clip_score alone: ${w.priorAccuracy}`);
  assert.ok(w.points[0].warm >= w.points[0].cold, `8 comparisons: ${JSON.stringify(w.points[0])}`);
  assert.ok(card.heldOut.accuracy >= 0.9, `${card.heldOut.accuracy}`);
  await assert.rejects(trainExperimentReward(dir, { backbone: brightnessBackbone(false), prior: 'clip_score' }), /clip_score compares each image with its prompt, but the reward backbone test brightness has no text tower/);
});
