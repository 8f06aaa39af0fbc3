import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DownloadProgress, PIPELINE_REPO, cachedModelDir, downloadModel, hubEndpoint, resolveModel, selectPipelineFiles } from '../../../src/core/models/hubDownload';
import { loadModelFolder } from '../../../src/core/models/modelFolder';
import { needsFixture, referenceSd } from '../fixtures';
import { MockHub, startMockHub } from './mockHub';

const TOKEN = 'hf_test_token';
const tinyModel = join(__dirname, '../../../media/tiny-model');
let hub: MockHub | undefined;
let requests: MockHub['requests'] = [];
let baseUrl = '';

function listFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile()).map((f) => relative(dir, join(dir, f)));
}

// Serves the reference-sd fixture in the Hub's URL layout; the gated repo needs the token; the first
// download of unet/model.onnx is cut off halfway, as a flaky connection would.
before(async () => {
  if (needsFixture()) return;
  hub = await startMockHub({ root: referenceSd, token: TOKEN, dropOnce: 'unet/model.onnx', extraSiblings: ['README.md', 'unet/diffusion_pytorch_model.safetensors'] });
  requests = hub.requests;
  baseUrl = hub.url;
});
after(() => hub?.close());

test('a revision cannot name the cache itself or a folder above its repo: `.`, `..` and names with `..` are refused', () => {
  const cache = join(tmpdir(), 'ddpo-cache');
  assert.equal(cachedModelDir(cache, 'owner/name', 'v1.0'), join(cache, 'owner--name', 'v1.0'));
  for (const bad of ['.', '..', '.hidden', 'a..b', '../x']) assert.throws(() => cachedModelDir(cache, 'owner/name', bad), /is not a usable revision name/, bad);
});

test('only the files the ONNX pipeline reads are selected', () => {
  const picked = selectPipelineFiles(['README.md', 'model_index.json', 'unet/model.onnx', 'unet/model.onnx_data', 'unet/weights.pb', 'unet/config.json',
    'unet/diffusion_pytorch_model.safetensors', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'scheduler/scheduler_config.json', 'safety_checker/model.onnx', 'vae_encoder/model.onnx']);
  assert.deepEqual(picked, ['model_index.json', 'unet/model.onnx', 'unet/model.onnx_data', 'unet/weights.pb', 'unet/config.json', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'scheduler/scheduler_config.json', 'vae_encoder/model.onnx']);
});

test('a gated repo downloads with the token, resumes a dropped file with Range, and is then used offline', { skip: needsFixture() }, async () => {
  const cache = mkdtempSync(join(tmpdir(), 'hub-'));
  try {
    await assert.rejects(downloadModel({ repo: 'gated/sd', cacheDir: cache, baseUrl }), /gated or private.*token/);
    const events: DownloadProgress[] = [];
    const dir = await downloadModel({ repo: 'gated/sd', cacheDir: cache, baseUrl, token: TOKEN, onProgress: (p) => events.push(p) });
    const unetRequests = requests.filter((r) => r.path.endsWith('/unet/model.onnx'));
    assert.equal(unetRequests.length, 2);
    const size = statSync(join(referenceSd, 'unet/model.onnx')).size;
    assert.ok(unetRequests[1].range && Number(unetRequests[1].range.match(/\d+/)![0]) > 0, `second request resumes: ${unetRequests[1].range}`);
    assert.ok(Number(unetRequests[1].range!.match(/\d+/)![0]) < size);
    assert.ok(requests.filter((r) => r.path.includes('/resolve/')).every((r) => r.auth === `Bearer ${TOKEN}`));
    assert.ok(!requests.some((r) => /safetensors|README|oracle/.test(r.path) && r.path.includes('/resolve/') && !r.path.endsWith('unet/oracle.json')));
    for (const f of ['unet/model.onnx', 'text_encoder/model.onnx', 'vae_decoder/model.onnx', 'tokenizer/vocab.json']) {
      assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(referenceSd, f))), f);
    }
    assert.ok(!listFiles(dir).some((f) => f.endsWith('.part')));
    assert.equal(loadModelFolder(dir).vaeScalingFactor, 0.18215);
    const last = events[events.length - 1];
    assert.equal(last.bytes, last.total);
    // Complete in the cache: resolving it again needs no server at all.
    const before = requests.length;
    assert.equal(await resolveModel('gated/sd', { cacheDir: cache, baseUrl: 'http://127.0.0.1:1', offline: true }), dir);
    assert.equal(requests.length, before);
  } finally { rmSync(cache, { recursive: true, force: true }); }
});

test('a file whose reply ends early without saying its length is resumed to the listed size, never committed short', async () => {
  const mock = await startMockHub({ root: tinyModel, endEarlyOnce: 'unet/model.onnx' });
  const cache = mkdtempSync(join(tmpdir(), 'hub-'));
  try {
    const dir = await downloadModel({ repo: 'owner/tiny', cacheDir: cache, baseUrl: mock.url });
    const unet = mock.requests.filter((r) => r.path.endsWith('/unet/model.onnx'));
    const size = statSync(join(tinyModel, 'unet/model.onnx')).size;
    assert.deepEqual(unet.map((r) => r.range), [undefined, `bytes=${size >> 1}-`], 'the second request resumes where the short reply ended');
    assert.ok(readFileSync(join(dir, 'unet/model.onnx')).equals(readFileSync(join(tinyModel, 'unet/model.onnx'))));
    // a .part longer than the file is thrown away and fetched again whole
    const again = mkdtempSync(join(tmpdir(), 'hub-'));
    const partDir = join(again, relative(cache, dir), 'unet');
    mkdirSync(partDir, { recursive: true });
    writeFileSync(join(partDir, 'model.onnx.part'), Buffer.alloc(size + 5));
    const dir2 = await downloadModel({ repo: 'owner/tiny', cacheDir: again, baseUrl: mock.url });
    assert.ok(readFileSync(join(dir2, 'unet/model.onnx')).equals(readFileSync(join(tinyModel, 'unet/model.onnx'))));
    rmSync(again, { recursive: true, force: true });
  } finally {
    rmSync(cache, { recursive: true, force: true });
    await mock.close();
  }
});

test('a file list naming a path outside the model folder (a hostile mirror) is refused before anything is written', async () => {
  const mock = await startMockHub({ root: tinyModel, extraSiblings: ['unet/../../../escaped.onnx'] });
  const cache = mkdtempSync(join(tmpdir(), 'hub-'));
  try {
    await assert.rejects(downloadModel({ repo: 'owner/tiny', cacheDir: cache, baseUrl: mock.url, layout: { select: (ps) => ps, problem: () => undefined } }),
      /The file list of owner\/tiny from http:\/\/127\.0\.0\.1:\d+ names "unet\/\.\.\/\.\.\/\.\.\/escaped\.onnx", which is outside the model's folder \(it goes above the folder\); nothing was downloaded/);
    assert.deepEqual(mock.requests.filter((r) => r.path.includes('/resolve/')), []);
    assert.equal(existsSync(join(cache, 'escaped.onnx')), false);
  } finally {
    rmSync(cache, { recursive: true, force: true });
    await mock.close();
  }
});

// A mock Hub serving a copy of the tiny model at commit abc123 whose UNet connection drops once, and `push`, which
// changes a served file's bytes (from byte `from` on, keeping its size) as commit def456.
async function branchHub() {
  const served = mkdtempSync(join(tmpdir(), 'hub-served-'));
  cpSync(tinyModel, served, { recursive: true });
  let sha = 'abc123';
  const mock = await startMockHub({ root: served, dropOnce: 'unet/model.onnx', sha: () => sha });
  const cache = mkdtempSync(join(tmpdir(), 'hub-'));
  return {
    served, cache, mock,
    push(file: string, from: number): Buffer {
      const bytes = readFileSync(join(served, file));
      for (let i = from; i < bytes.length; i += 997) bytes[i] ^= 0xff;
      writeFileSync(join(served, file), bytes);
      sha = 'def456';
      return bytes;
    },
    async close() {
      rmSync(cache, { recursive: true, force: true });
      rmSync(served, { recursive: true, force: true });
      await mock.close();
    },
  };
}

test('a download resumed after a push to the branch starts over at the new commit, never joining two revisions', async () => {
  const hub = await branchHub();
  const { cache, mock } = hub;
  try {
    await assert.rejects(downloadModel({ repo: 'owner/tiny', cacheDir: cache, baseUrl: mock.url, retries: 0 }), /Run the download again to resume/);
    // new weights of the same size are pushed before the person runs the download again
    const size = readFileSync(join(hub.served, 'unet/model.onnx')).length;
    const bytes = hub.push('unet/model.onnx', size >> 1);
    const dir = await downloadModel({ repo: 'owner/tiny', cacheDir: cache, baseUrl: mock.url });
    assert.ok(readFileSync(join(dir, 'unet/model.onnx')).equals(bytes), 'the new commit\'s file, whole');
    const last = mock.requests.filter((r) => r.path.endsWith('/unet/model.onnx')).at(-1)!;
    assert.match(last.path, /\/resolve\/def456\//, 'fetched at the commit the listing named');
    assert.equal(last.range, undefined, 'not resumed from the other commit\'s bytes');
  } finally {
    await hub.close();
  }
});

test('a file that had finished before a push to the branch is fetched again at the new commit, not kept from the old one', async () => {
  const hub = await branchHub();
  const { cache, mock } = hub;
  // the pipeline's files with the UNet last, so the text encoder has surely finished when the UNet's connection drops
  const layout = { ...PIPELINE_REPO, select: (ps: string[]) => PIPELINE_REPO.select(ps).sort((a, b) => Number(a === 'unet/model.onnx') - Number(b === 'unet/model.onnx')) };
  try {
    await assert.rejects(downloadModel({ repo: 'owner/tiny', cacheDir: cache, baseUrl: mock.url, retries: 0, layout }), /Run the download again to resume/);
    const finished = listFiles(cache).find((f) => f.endsWith('text_encoder/model.onnx'));
    assert.ok(finished, 'the text encoder finished at abc123');
    assert.ok(readFileSync(join(cache, finished)).equals(readFileSync(join(hub.served, 'text_encoder/model.onnx'))));
    // the push changes the finished file's bytes but not its size, so only the commit can tell the two apart
    const bytes = hub.push('text_encoder/model.onnx', 0);
    const dir = await downloadModel({ repo: 'owner/tiny', cacheDir: cache, baseUrl: mock.url, layout });
    assert.ok(readFileSync(join(dir, 'text_encoder/model.onnx')).equals(bytes), 'the text encoder of the new commit, not the one of abc123');
    assert.match(mock.requests.filter((r) => r.path.endsWith('/text_encoder/model.onnx')).at(-1)!.path, /\/resolve\/def456\//);
  } finally {
    await hub.close();
  }
});

test('the disk-space check fails before downloading anything', { skip: needsFixture() }, async () => {
  const cache = mkdtempSync(join(tmpdir(), 'hub-'));
  try {
    const before = requests.length;
    await assert.rejects(downloadModel({ repo: 'huge/sd', cacheDir: cache, baseUrl }), /Not enough disk space/);
    assert.ok(!requests.slice(before).some((r) => r.path.includes('/resolve/')));
  } finally { rmSync(cache, { recursive: true, force: true }); }
});

test('offline without a cached copy says so', async () => {
  await assert.rejects(resolveModel('someone/model', { cacheDir: tmpdir(), offline: true }), /offline/);
  await assert.rejects(resolveModel('not a repo', { cacheDir: tmpdir(), offline: true }), /not a Hugging Face repo id/);
});

test('a local path is never looked up on the Hub, whatever it looks like', { skip: needsFixture() }, async () => {
  const cwd = process.cwd();
  const root = mkdtempSync(join(tmpdir(), 'local-model-'));
  try {
    mkdirSync(join(root, 'someone', 'sd'), { recursive: true });
    writeFileSync(join(root, 'model.onnx'), 'not a folder');
    process.chdir(root);
    const before = requests.length;
    const logs: string[] = [];
    assert.equal(await resolveModel('someone/sd', { cacheDir: root, baseUrl, onLog: (l) => logs.push(l) }), join(realpathSync(root), 'someone', 'sd'));
    await assert.rejects(resolveModel('model.onnx', { cacheDir: root, baseUrl }), /model\.onnx is a file, not a model folder: give the folder that holds model_index\.json/);
    assert.equal(requests.length, before, 'no Hub request for a local path');
    assert.deepEqual(logs, []);
  } finally {
    process.chdir(cwd);
    rmSync(root, { recursive: true, force: true });
  }
});

test('a missing path says both readings: not a local folder, and not a repo id or not on the Hub', { skip: needsFixture() }, async () => {
  const cache = mkdtempSync(join(tmpdir(), 'hub-'));
  try {
    const before = requests.length;
    await assert.rejects(resolveModel('./typo-model', { cacheDir: cache, baseUrl }),
      /^Error: \.\/typo-model is not a local folder \(no .*typo-model\), and '\.\/typo-model' is not a Hugging Face repo id \(owner\/name\) either: check the path$/);
    await assert.rejects(resolveModel('../models/sd', { cacheDir: cache, baseUrl }), /not a local folder.*not a Hugging Face repo id/);
    assert.equal(requests.length, before, 'a path that cannot be a repo id is not sent to the Hub');
    const logs: string[] = [];
    await assert.rejects(resolveModel('missing/model', { cacheDir: cache, baseUrl, onLog: (l) => logs.push(l) }),
      /^Error: missing\/model is not a local folder \(no .*missing\/model\), and as a Hugging Face Hub repo: Listing missing\/model@main .*not found \(HTTP 404\); check the repo id/);
    assert.deepEqual(logs, ['missing/model is not a local folder; trying the Hugging Face Hub repo missing/model']);
  } finally { rmSync(cache, { recursive: true, force: true }); }
});

test('the Hub endpoint is HF_ENDPOINT when set (trailing slash dropped), else huggingface.co; a non-URL is refused by name', () => {
  assert.equal(hubEndpoint({}), 'https://huggingface.co');
  assert.equal(hubEndpoint({ HF_ENDPOINT: '  ' }), 'https://huggingface.co');
  assert.equal(hubEndpoint({ HF_ENDPOINT: 'https://hf-mirror.com/' }), 'https://hf-mirror.com');
  assert.equal(hubEndpoint({ HF_ENDPOINT: 'http://127.0.0.1:8080' }), 'http://127.0.0.1:8080');
  assert.throws(() => hubEndpoint({ HF_ENDPOINT: 'hf-mirror.com' }), /HF_ENDPOINT is "hf-mirror.com", which is not an http\(s\) URL/);
});

test('a download without baseUrl goes to HF_ENDPOINT; an explicit baseUrl wins over it', async () => {
  const tiny = await startMockHub({ root: tinyModel });
  const cache = mkdtempSync(join(tmpdir(), 'hub-'));
  const saved = process.env.HF_ENDPOINT;
  try {
    process.env.HF_ENDPOINT = tiny.url + '/';
    const dir = await downloadModel({ repo: 'ddpo-test/tiny-shapes', cacheDir: cache });
    assert.equal(dir, join(cache, 'ddpo-test--tiny-shapes', 'main'));
    assert.ok(readFileSync(join(dir, 'unet/model.onnx')).equals(readFileSync(join(tinyModel, 'unet/model.onnx'))));
    assert.equal(loadModelFolder(dir).modelId, 'ddpo-studio/tiny-shapes');
    assert.ok(tiny.requests.some((r) => r.path === '/api/models/ddpo-test/tiny-shapes/revision/main'));
    assert.ok(!existsSync(join(dir, 'samples.png')), 'files the pipeline does not read stay on the server');
    process.env.HF_ENDPOINT = 'http://127.0.0.1:1';
    const served = tiny.requests.length;
    await downloadModel({ repo: 'other/tiny', cacheDir: cache, baseUrl: tiny.url });
    assert.ok(tiny.requests.length > served);
  } finally {
    if (saved === undefined) delete process.env.HF_ENDPOINT; else process.env.HF_ENDPOINT = saved;
    rmSync(cache, { recursive: true, force: true });
    await tiny.close();
  }
});

test('an HF_ENDPOINT nobody answers on gives an error naming the address and the variable', async () => {
  const saved = process.env.HF_ENDPOINT;
  const cache = mkdtempSync(join(tmpdir(), 'hub-'));
  try {
    process.env.HF_ENDPOINT = 'http://127.0.0.1:1';
    await assert.rejects(downloadModel({ repo: 'someone/model', cacheDir: cache }), /Could not reach the Hub at http:\/\/127\.0\.0\.1:1 .*HF_ENDPOINT/);
  } finally {
    if (saved === undefined) delete process.env.HF_ENDPOINT; else process.env.HF_ENDPOINT = saved;
    rmSync(cache, { recursive: true, force: true });
  }
});
