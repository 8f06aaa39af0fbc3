import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors, toFloat32 } from '../../../src/core/safetensors';
import { CLIP_MEAN, CLIP_STD, loadOnnxBackbone, readPreprocess, toPixelValues } from '../../../src/core/reward/onnxBackbone';
import { openBackbone } from '../../../src/core/reward/openBackbone';
import { inspectBackboneFolder, selectBackboneFiles } from '../../../src/core/models/backboneFolder';
import { BACKBONE_REPO, cachedModelDir, downloadModel } from '../../../src/core/models/hubDownload';
import { renderShape } from '../../../src/core/reward/sim';
import { fixture, needsFixture, referenceSd } from '../fixtures';
import { startMockHub, type MockHub } from '../models/mockHub';
import { TINY_VISION, addVisionTower, writeTestClipFolder } from './helpers/clipFolder';
import { emptyGraph, makeModel } from '../../../src/core/onnx/ir';
import { saveModel } from '../../../src/core/onnx/proto';

const clipVision = fixture('reference-clip-vision');
const noVisionFixture = needsFixture('reference-clip-vision');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-clip-'));
const disc = (size: number, radius = 0.2) => renderShape({ shape: 'disc', cx: 0.5, cy: 0.5, radius, color: [200, 50, 50], background: [100, 100, 100] }, size);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

// One folder in each layout, shared by the tests that only read them (same seeds: the combined graph holds the same towers).
const folders = { separate: '', combined: '', json: '' };
let hub: MockHub | undefined;
before(async () => {
  folders.separate = writeTestClipFolder(tmp());
  folders.combined = writeTestClipFolder(tmp(), { towers: 'combined' });
  folders.json = writeTestClipFolder(tmp(), { tokenizer: 'json' });
  hub = await startMockHub({ root: folders.separate, extraSiblings: ['onnx/vision_model_quantized.onnx', 'onnx/text_model_fp16.onnx', 'onnx/model.onnx', 'README.md', 'pytorch_model.bin'] });
});
after(async () => {
  await hub?.close();
  for (const d of Object.values(folders)) fs.rmSync(d, { recursive: true, force: true });
});

test('the reference CLIP vision tower, in the Hub layout, reproduces its PyTorch oracle; with no text tower the reward is image-only, said once', { skip: noVisionFixture }, async () => {
  const dir = tmp();
  fs.mkdirSync(path.join(dir, 'onnx'));
  fs.copyFileSync(path.join(clipVision, 'model.onnx'), path.join(dir, 'onnx', 'vision_model.onnx'));
  fs.copyFileSync(path.join(clipVision, 'config.json'), path.join(dir, 'config.json'));
  const logs: string[] = [];
  const bb = await loadOnnxBackbone(dir, { onLog: (l) => logs.push(l) });
  const oracle = readSafetensors(path.join(clipVision, 'oracle.safetensors'));
  const embs = await bb.runPixels(toFloat32(oracle.get('pixel_values')!), 2);
  const want = toFloat32(oracle.get('image_embeds')!);
  assert.equal(bb.dim, 16);
  assert.ok(maxDiff([...embs[0], ...embs[1]], want) < 1e-4, `max difference ${maxDiff([...embs[0], ...embs[1]], want)}`);
  assert.equal(bb.text, undefined);
  assert.deepEqual(logs, [`reward backbone ${dir}: no text tower (onnx/text_model.onnx); the reward sees images only, not prompts`]);
  await bb.embed([disc(48), disc(64)]);
  assert.equal(logs.length, 1, 'embedding does not repeat it');
  assert.match(bb.id, /^onnx:[0-9a-f]{16}$/);
  assert.equal(bb.label, `${path.basename(dir)} (image only)`);
  await bb.dispose?.();
});

test('a CLIP text tower (the reference SD text encoder) reproduces its oracle through the loader, next to an image tower of its width', { skip: needsFixture() }, async () => {
  const dir = tmp();
  fs.mkdirSync(path.join(dir, 'onnx'));
  fs.copyFileSync(path.join(referenceSd, 'text_encoder', 'model.onnx'), path.join(dir, 'onnx', 'text_model.onnx'));
  for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json']) fs.copyFileSync(path.join(referenceSd, 'tokenizer', f), path.join(dir, f));
  const g = emptyGraph('vision_model');
  addVisionTower(g, TINY_VISION, 32, 3);
  saveModel(makeModel(g, 17), path.join(dir, 'onnx', 'vision_model.onnx'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'clip', text_config: { vocab_size: 1000 } }));
  const bb = await loadOnnxBackbone(dir);
  assert.ok(bb.text && bb.textTower, 'the text tower is used: both embed 32 wide');
  const oracle = readSafetensors(path.join(referenceSd, 'text_encoder', 'oracle.safetensors'));
  const ids = Array.from(toFloat32(oracle.get('input_ids')!), Math.round);
  const got = await bb.textTower!.runIds([ids.slice(0, 77), ids.slice(77)]);
  const want = toFloat32(oracle.get('pooler_output')!);
  assert.ok(maxDiff([...got[0], ...got[1]], want) < 1e-4, `max difference ${maxDiff([...got[0], ...got[1]], want)}`);
  // the tokenizer it reads is the fixture's, reproducing CLIP's reference BPE
  const tok = JSON.parse(fs.readFileSync(path.join(referenceSd, 'tokenizer', 'oracle.json'), 'utf8')) as { cases: { text: string; input_ids: number[] }[] };
  for (const c of tok.cases) assert.deepEqual(bb.textTower!.tokenizer.encode(c.text), c.input_ids, c.text);
  assert.match(bb.id, /^clip:[0-9a-f]{16}$/);
  await bb.dispose?.();
});

test('prompts are padded to the longest in a batch: the embedding equals the full-length row\'s, and tokenizer.json reads as vocab.json + merges.txt', async () => {
  const bb = await loadOnnxBackbone(folders.separate);
  const fromJson = await loadOnnxBackbone(folders.json);
  const prompts = ['a big red circle on a blue background', 'a small square'];
  const short = await bb.text!.embed(prompts);
  const full = await bb.textTower!.runIds(prompts.map((p) => bb.textTower!.tokenizer.encode(p)));
  for (let i = 0; i < 2; i++) assert.ok(maxDiff(short[i], full[i]) < 1e-5, `prompt ${i}: ${maxDiff(short[i], full[i])}`);
  assert.ok(maxDiff(short[0], short[1]) > 1e-3, 'different prompts embed differently');
  assert.deepEqual((await fromJson.text!.embed(prompts)).map((e) => Array.from(e)), short.map((e) => Array.from(e)));
  assert.notEqual(bb.id, fromJson.id, 'the tokenizer file is part of what the id hashes');
  await bb.dispose?.();
  await fromJson.dispose?.();
});

test('a combined onnx/model.onnx embeds images and prompts as the separate towers it holds do', async () => {
  const sep = await loadOnnxBackbone(folders.separate);
  const comb = await loadOnnxBackbone(folders.combined);
  assert.equal(inspectBackboneFolder(folders.combined).text, undefined);
  assert.ok(comb.text, 'the combined graph is also the text tower');
  const images = [disc(32), disc(48, 0.3), disc(40, 0.1)];
  const [a, b] = [await sep.embed(images), await comb.embed(images)];
  for (let i = 0; i < 3; i++) assert.ok(maxDiff(a[i], b[i]) < 1e-5, `image ${i}`);
  const [ta, tb] = [await sep.text!.embed(['a red circle', 'a blue square']), await comb.text!.embed(['a red circle', 'a blue square'])];
  for (let i = 0; i < 2; i++) assert.ok(maxDiff(ta[i], tb[i]) < 1e-5, `prompt ${i}`);
  await sep.dispose?.();
  await comb.dispose?.();
});

test('towers whose embeddings differ in width give an image-only reward, said once', async () => {
  const dir = writeTestClipFolder(tmp(), { textProj: 24 });
  const logs: string[] = [];
  const bb = await loadOnnxBackbone(dir, { onLog: (l) => logs.push(l) });
  assert.equal(bb.text, undefined);
  assert.deepEqual(logs, [`reward backbone ${dir}: its text embeddings are 24 wide and its image embeddings 16, so they do not share one space; the reward sees images only, not prompts`]);
  assert.match(bb.id, /^onnx:/);
  await bb.dispose?.();
});

test('a tokenizer whose ids the text model cannot embed is refused, by config.json and, without one, by a trial run', async () => {
  const withConfig = writeTestClipFolder(tmp(), { text: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 100, eos_token_id: 2 } });
  await assert.rejects(loadOnnxBackbone(withConfig), (e: Error) => {
    assert.match(e.message, /the tokenizer .*vocab\.json gives token ids up to 602, but .*onnx\/text_model\.onnx embeds 100 tokens \(config\.json vocab_size\): the tokenizer and the text model do not belong together/);
    return true;
  });
  const bare = writeTestClipFolder(tmp(), { config: false, text: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 100, eos_token_id: 2 } });
  await assert.rejects(loadOnnxBackbone(bare), /gives token ids up to 602, but .*text_model\.onnx cannot embed it: the tokenizer and the text model do not belong together; download the repo again/);
});

// Cached embeddings and trained heads are keyed by the backbone's id: it must change when the pixels the tower sees
// would (a plain image encoder's preprocessor_config.json edited), and only then.
test('a backbone\'s id covers the preprocessing it applies, for the plain layout too', async () => {
  const root = tmp();
  const plain = writeTestClipFolder(path.join(root, 'plain'), { towers: 'plain', tokenizer: 'none' });
  const twin = path.join(root, 'twin');
  fs.cpSync(plain, twin, { recursive: true });
  const ids = async (dir: string) => { const b = await loadOnnxBackbone(dir); await b.dispose?.(); return b.id; };
  assert.equal(await ids(twin), await ids(plain), 'the same files give the same id');
  const pre = path.join(twin, 'preprocessor_config.json');
  const cfg = fs.existsSync(pre) ? JSON.parse(fs.readFileSync(pre, 'utf8')) : {};
  fs.writeFileSync(pre, JSON.stringify({ ...cfg, image_mean: [0.5, 0.5, 0.5] }));
  assert.notEqual(await ids(twin), await ids(plain), 'another normalisation is another backbone');
});

test('a folder without an image encoder, or with a cut-off one, says what it needs', async () => {
  const empty = tmp();
  assert.throws(() => inspectBackboneFolder(empty), /has no image encoder; give a folder with onnx\/vision_model\.onnx .*Xenova\/clip-vit-large-patch14/);
  fs.mkdirSync(path.join(empty, 'onnx'));
  fs.writeFileSync(path.join(empty, 'onnx', 'vision_model.onnx'), 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\n');
  assert.throws(() => inspectBackboneFolder(empty), /vision_model\.onnx is a Git LFS pointer/);
  const textOnly = tmp();
  fs.copyFileSync(path.join(folders.separate, 'onnx', 'text_model.onnx'), path.join(textOnly, 'model.onnx'));
  await assert.rejects(loadOnnxBackbone(textOnly), /takes input_ids.*not images \(pixel_values\): a text encoder alone cannot score images/);
  // a text tower cut off mid-download is not a backbone without one (which would give an image-only reward)
  const cut = writeTestClipFolder(tmp());
  fs.renameSync(path.join(cut, 'onnx', 'text_model.onnx'), path.join(cut, 'onnx', 'text_model.onnx.part'));
  assert.throws(() => inspectBackboneFolder(cut), /onnx\/text_model\.onnx is only partly downloaded \(text_model\.onnx\.part\); run the download again to resume it/);
});

test('a tokenizer cut off mid-download at the top of the folder is named, not taken for a backbone without a text tower', () => {
  // without its tokenizer the text tower is unusable: the reward would be image-only, ignoring prompts
  const cut = writeTestClipFolder(tmp(), { tokenizer: 'json' });
  fs.renameSync(path.join(cut, 'tokenizer.json'), path.join(cut, 'tokenizer.json.part'));
  assert.throws(() => inspectBackboneFolder(cut), /tokenizer\.json is only partly downloaded \(tokenizer\.json\.part\); run the download again/);
  fs.rmSync(cut, { recursive: true, force: true });
});

test('only the float32 towers, tokenizer and configs of a backbone repo are fetched; separate towers win over the combined model', () => {
  assert.deepEqual(selectBackboneFiles(['README.md', 'config.json', 'preprocessor_config.json', 'tokenizer.json', 'vocab.json', 'merges.txt', 'onnx/model.onnx',
    'onnx/vision_model.onnx', 'onnx/vision_model.onnx_data', 'onnx/vision_model_quantized.onnx', 'onnx/vision_model_fp16.onnx', 'onnx/text_model.onnx', 'pytorch_model.bin']),
  ['config.json', 'preprocessor_config.json', 'tokenizer.json', 'vocab.json', 'merges.txt', 'onnx/vision_model.onnx', 'onnx/vision_model.onnx_data', 'onnx/text_model.onnx']);
  assert.deepEqual(selectBackboneFiles(['onnx/model.onnx', 'onnx/model_quantized.onnx', 'tokenizer.json']), ['tokenizer.json', 'onnx/model.onnx']);
  assert.deepEqual(selectBackboneFiles(['model.onnx', 'preprocessor_config.json']), ['preprocessor_config.json', 'model.onnx']);
});

test('a Hub backbone is downloaded from the mock Hub into the cache, then opened offline without a request', async () => {
  const cache = tmp();
  try {
    const lines: string[] = [];
    const bb = await openBackbone('someone/tiny-clip', { cacheDir: cache, baseUrl: hub!.url, onLog: (l) => lines.push(l) });
    const dir = cachedModelDir(cache, 'someone/tiny-clip');
    assert.deepEqual(bb.source, { id: 'someone/tiny-clip', path: dir });
    assert.equal(bb.label, 'someone/tiny-clip (image + text)');
    assert.deepEqual(lines, [`downloading the reward backbone someone/tiny-clip into ${dir}`]);
    const fetched = hub!.requests.filter((r) => r.path.includes('/resolve/')).map((r) => r.path.replace(/^.*\/resolve\/abc123\//, '')).sort();
    assert.deepEqual(fetched, ['config.json', 'merges.txt', 'onnx/text_model.onnx', 'onnx/vision_model.onnx', 'preprocessor_config.json', 'tokenizer_config.json', 'vocab.json']);
    const local = await loadOnnxBackbone(folders.separate);
    assert.equal(bb.id, local.id, 'the same files give the same id, wherever they are');
    await local.dispose?.();
    await bb.dispose?.();
    const before = hub!.requests.length;
    const again = await openBackbone('someone/tiny-clip', { cacheDir: cache, baseUrl: 'http://127.0.0.1:1', offline: true });
    assert.equal(again.id, bb.id);
    assert.equal(hub!.requests.length, before);
    await again.dispose?.();
  } finally { fs.rmSync(cache, { recursive: true, force: true }); }
});

test('offline or unreachable without the backbone: the error names the repo and how to point at a local folder; nothing falls back', async () => {
  const cache = tmp();
  await assert.rejects(openBackbone({ id: 'Xenova/clip-vit-large-patch14' }, { cacheDir: cache, offline: true, experimentFile: '/w/.ddpo/cats/experiment.json' }),
    /^Error: The reward backbone Xenova\/clip-vit-large-patch14 is not downloaded \(no complete copy in .*Xenova--clip-vit-large-patch14.*\) and downloads are off \(offline\)\. Connect to the Hub once to download Xenova\/clip-vit-large-patch14, or point at a local copy .*"rewardBackbone": \{ "id": "Xenova\/clip-vit-large-patch14", "path": "\/path\/to\/folder" \} in \/w\/\.ddpo\/cats\/experiment\.json, or pass `ddpo reward train --backbone \/path\/to\/folder`$/);
  await assert.rejects(openBackbone('Xenova/clip-vit-large-patch14', { cacheDir: cache, baseUrl: 'http://127.0.0.1:1' }),
    /not downloaded .* and could not be fetched from the Hub: Could not reach the Hub at http:\/\/127\.0\.0\.1:1.*point at a local copy/);
  await assert.rejects(openBackbone({ id: 'my-clip', path: path.join(cache, 'gone') }), /reward backbone my-clip: its folder .*gone does not exist; Connect to the Hub once to download it, or point at a local copy/);
  fs.rmSync(cache, { recursive: true, force: true });
});

test('a truncated backbone download is a clear error, leaves no half file in place and no complete marker, and resumes', async () => {
  const cut = await startMockHub({ root: folders.separate, dropOnce: 'onnx/vision_model.onnx' });
  const cache = tmp();
  try {
    const opts = { repo: 'someone/cut-clip', cacheDir: cache, baseUrl: cut.url, layout: BACKBONE_REPO };
    await assert.rejects(downloadModel({ ...opts, retries: 0 }), /^Error: Failed to download onnx\/vision_model\.onnx of someone\/cut-clip: .*Run the download again to resume$/);
    const dir = cachedModelDir(cache, 'someone/cut-clip');
    assert.equal(fs.existsSync(path.join(dir, 'onnx', 'vision_model.onnx')), false, 'the cut file is not in place');
    assert.ok(fs.existsSync(path.join(dir, 'onnx', 'vision_model.onnx.part')), 'what arrived waits to be resumed');
    assert.equal(fs.existsSync(path.join(dir, '.ddpo-complete.json')), false);
    assert.throws(() => inspectBackboneFolder(dir), /onnx\/vision_model\.onnx is only partly downloaded \(vision_model\.onnx\.part\); run the download again to resume it/);
    const bb = await openBackbone('someone/cut-clip', { cacheDir: cache, baseUrl: cut.url });
    assert.ok(fs.readFileSync(path.join(dir, 'onnx', 'vision_model.onnx')).equals(fs.readFileSync(path.join(folders.separate, 'onnx', 'vision_model.onnx'))));
    const resumed = cut.requests.filter((r) => r.path.endsWith('/onnx/vision_model.onnx'));
    assert.equal(resumed.length, 2);
    assert.match(resumed[1].range ?? '', /^bytes=[1-9]\d*-$/);
    await bb.dispose?.();
  } finally {
    await cut.close();
    fs.rmSync(cache, { recursive: true, force: true });
  }
});

test('preprocessing follows the folder\'s preprocessor_config.json: an image of the model\'s size passes through, a larger one is averaged down, not sampled', () => {
  const pre = readPreprocess(folders.separate);
  assert.deepEqual({ size: pre.size, shortEdge: pre.shortEdge, resample: pre.resample }, { size: 32, shortEdge: 32, resample: 'bicubic' });
  const img = disc(32);
  const px = toPixelValues([img], pre);
  for (const i of [0, 500, 1023]) assert.ok(Math.abs(px[i] - (img.data[i * 3] / 255 - pre.mean[0]) / pre.std[0]) < 1e-6);
  // a 1-pixel checkerboard reduced 3x: every output pixel averages black and white. Sampling without antialiasing
  // would keep one of them (an odd factor puts a source pixel at each output centre; halving would not tell them apart)
  const n = 96, data = new Uint8Array(n * n * 3);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) data.fill((x + y) % 2 ? 255 : 0, (y * n + x) * 3, (y * n + x) * 3 + 3);
  const down = toPixelValues([{ width: n, height: n, data }], { size: 32, mean: [0, 0, 0], std: [1, 1, 1] });
  assert.ok(down.every((v) => Math.abs(v - 0.5) < 0.02), `range ${Math.min(...down)}..${Math.max(...down)}`);
});

test('a wide or tall image is cropped at its centre: the model sees the middle, not an edge', () => {
  // three bands along the long side; after the short side is resized to the crop size, the middle band fills the crop
  const bands = (width: number, height: number, along: 'x' | 'y') => {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[(y * width + x) * 3 + Math.floor((along === 'x' ? x / width : y / height) * 3)] = 255;
    return { width, height, data };
  };
  const plain = { size: 32, mean: [0, 0, 0], std: [1, 1, 1] };
  for (const img of [bands(96, 32, 'x'), bands(32, 96, 'y')]) {
    const px = toPixelValues([img], plain);
    const channelMean = (c: number) => px.subarray(c * 1024, (c + 1) * 1024).reduce((a, v) => a + v, 0) / 1024;
    assert.deepEqual([0, 1, 2].map((c) => Math.round(channelMean(c) * 100) / 100), [0, 1, 0], `${img.width}x${img.height}`);
  }
});

test('each colour channel is normalised with its own mean and std (CLIP\'s differ per channel)', () => {
  const data = new Uint8Array(32 * 32 * 3);
  for (let i = 0; i < 32 * 32; i++) data.set([200, 100, 50], i * 3);
  const pre = { size: 32, mean: CLIP_MEAN, std: CLIP_STD };
  const px = toPixelValues([{ width: 32, height: 32, data }], pre);
  [200, 100, 50].forEach((v, c) => assert.ok(Math.abs(px[c * 1024 + 517] - (v / 255 - pre.mean[c]) / pre.std[c]) < 1e-5, `channel ${c}: ${px[c * 1024 + 517]}`));
});

// Hashing large weights is remembered per file size and modification time; a same-size file of other weights written
// over the old one (a re-export, another download) must still be another backbone, or its cached embeddings and
// trained heads would be reused for the wrong model.
test('weights replaced in place by others of the same size give the backbone another id', async () => {
  const root = tmp();
  const dir = writeTestClipFolder(path.join(root, 'clip'), { towers: 'plain', tokenizer: 'none', seed: 1 });
  const other = writeTestClipFolder(path.join(root, 'other'), { towers: 'plain', tokenizer: 'none', seed: 2 });
  const model = path.join(dir, 'model.onnx');
  assert.equal(fs.statSync(model).size, fs.statSync(path.join(other, 'model.onnx')).size, 'same architecture, same size');
  const ids = async () => { const b = await loadOnnxBackbone(dir); await b.dispose?.(); return b.id; };
  const before = await ids();
  fs.copyFileSync(path.join(other, 'model.onnx'), model);
  const later = new Date(fs.statSync(model).mtimeMs + 5000);
  fs.utimesSync(model, later, later);
  assert.notEqual(await ids(), before);
});
