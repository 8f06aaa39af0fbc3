import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DownloadProgress, downloadModel, resolveModel, selectPipelineFiles } from '../../../src/core/models/hubDownload';
import { loadModelFolder } from '../../../src/core/models/modelFolder';
import { needsFixtures, referenceSd } from '../diffusion/fixtures';

const TOKEN = 'hf_test_token';
const requests: { path: string; range?: string; auth?: string }[] = [];
let server: Server;
let baseUrl = '';
let dropped = false;

function listFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile()).map((f) => relative(dir, join(dir, f)));
}

// Serves the reference-sd fixture in the Hub's URL layout; the gated repo needs the token; the first
// download of unet/model.onnx is cut off halfway, as a flaky connection would.
before(async () => {
  if (needsFixtures) return;
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push({ path: url.pathname, range: req.headers.range, auth: req.headers.authorization });
    const gated = url.pathname.includes('/gated/');
    if (gated && req.headers.authorization !== `Bearer ${TOKEN}`) { res.writeHead(401).end('unauthorized'); return; }
    const api = url.pathname.match(/^\/api\/models\/(\w+)\/(\w+)\/revision\/(\w+)$/);
    if (api) {
      const huge = api[1] === 'huge';
      const siblings = [...listFiles(referenceSd), 'README.md', 'unet/diffusion_pytorch_model.safetensors'].map((f) => ({
        rfilename: f, size: huge ? 1e15 : existsSync(join(referenceSd, f)) ? statSync(join(referenceSd, f)).size : 10,
      }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sha: 'abc123', siblings }));
      return;
    }
    const file = url.pathname.match(/^\/\w+\/\w+\/resolve\/\w+\/(.+)$/);
    if (!file || !existsSync(join(referenceSd, file[1]))) { res.writeHead(404).end(); return; }
    const data = readFileSync(join(referenceSd, decodeURIComponent(file[1])));
    const range = req.headers.range?.match(/^bytes=(\d+)-$/);
    if (range) {
      const start = Number(range[1]);
      res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` }).end(data.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': data.length });
    if (file[1] === 'unet/model.onnx' && !dropped) {
      dropped = true;
      res.write(data.subarray(0, data.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server?.close());

test('only the files the ONNX pipeline reads are selected', () => {
  const picked = selectPipelineFiles(['README.md', 'model_index.json', 'unet/model.onnx', 'unet/model.onnx_data', 'unet/weights.pb', 'unet/config.json',
    'unet/diffusion_pytorch_model.safetensors', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'scheduler/scheduler_config.json', 'safety_checker/model.onnx', 'vae_encoder/model.onnx']);
  assert.deepEqual(picked, ['model_index.json', 'unet/model.onnx', 'unet/model.onnx_data', 'unet/weights.pb', 'unet/config.json', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'scheduler/scheduler_config.json', 'vae_encoder/model.onnx']);
});

test('a gated repo downloads with the token, resumes a dropped file with Range, and is then used offline', { skip: needsFixtures }, async () => {
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

test('the disk-space check fails before downloading anything', { skip: needsFixtures }, async () => {
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
