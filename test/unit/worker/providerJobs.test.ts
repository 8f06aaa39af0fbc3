// Studio jobs honour the executionProvider setting: every model opens through the provider plan and the job logs where.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { handlers } from '../../../src/worker/handlers';
import type { JobContext } from '../../../src/worker/jobs';
import { releasePipelines } from '../../../src/worker/models';
import type { ParamsOf, ResultOf, WorkerRequestKind } from '../../../src/protocol';
import { needsTinyModel } from '../fixtures';

const MODEL = path.resolve(__dirname, '../../../media/tiny-model');
const skip = needsTinyModel();

// WebGPU is listed by onnxruntime-node on Linux but needs a GPU adapter; this machine (CI, a headless box) may have none.
async function webgpuOpens(): Promise<boolean> {
  if (!ort.listSupportedBackends().some((b) => b.name === 'webgpu')) return false;
  try {
    await (await ort.InferenceSession.create(path.join(MODEL, 'vae_decoder', 'model.onnx'), { executionProviders: ['webgpu'] })).release();
    return true;
  } catch {
    return false;
  }
}

async function call<K extends WorkerRequestKind>(kind: K, params: ParamsOf<K> | Record<string, unknown>, log: string[]): Promise<ResultOf<K>> {
  const h = handlers[kind];
  const ctx = { signal: new AbortController().signal, progress: () => undefined, log: (l: string) => log.push(l) } as unknown as JobContext<K>;
  return h.run(h.parse(params), ctx);
}

function experiment(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-provider-job-'));
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({
    schemaVersion: 1, name: path.basename(dir), createdAt: new Date().toISOString(), baseModel: { id: 'embedded:tiny-shapes', path: MODEL },
    prompts: ['a big red circle on a blue background'], settings: { steps: 2, guidanceScale: 3, imageSize: 32, seed: 0 },
  }));
  return dir;
}

test('with "auto", pair generation runs where the models open and logs the provider of each model and why not the GPU', { skip }, async () => {
  const gpu = await webgpuOpens();
  const dir = experiment();
  const log: string[] = [];
  const { pairs } = await call('generatePairs', { experimentDir: dir, modelDir: MODEL, count: 1, executionProvider: 'auto' }, log);
  assert.equal(pairs.length, 1);
  assert.ok(fs.existsSync(path.join(dir, pairs[0].a)));
  const lines = log.filter((l) => /execution provider:/.test(l));
  // on a GPU the UNet is rebuilt (float16, fused attention) at its first call
  assert.deepEqual(lines.map((l) => l.split(':')[0]), ['text_encoder/model.onnx', 'unet/model.onnx', 'vae_decoder/model.onnx', ...(gpu ? ['unet (rebuilt)'] : [])]);
  for (const l of lines) {
    if (gpu) assert.match(l, /execution provider: webgpu/);
    else if (ort.listSupportedBackends().some((b) => b.name === 'webgpu')) assert.match(l, /execution provider: cpu \(.*webgpu failed: \S/);
    else assert.match(l, /execution provider: cpu/);
  }
  // The same model with another choice is another pipeline; a later job reusing one still says where it runs.
  const cpuLog: string[] = [];
  await call('generatePairs', { experimentDir: dir, modelDir: MODEL, count: 1, executionProvider: 'cpu' }, cpuLog);
  assert.deepEqual(cpuLog, ['text_encoder/model.onnx: execution provider: cpu', 'unet/model.onnx: execution provider: cpu', 'vae_decoder/model.onnx: execution provider: cpu']);
  const again: string[] = [];
  await call('generatePairs', { experimentDir: dir, modelDir: MODEL, count: 1, executionProvider: 'auto' }, again);
  assert.deepEqual(again, [...lines].sort((x, y) => x.split(':')[0].localeCompare(y.split(':')[0])));
  await releasePipelines();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a cached pipeline with the rebuilt UNet tells the job running at its first call, and later jobs, where it opened', { skip }, async () => {
  const { pipelineFor } = await import('../../../src/worker/models');
  const { jobProviders } = await import('../../../src/core/runtime/jobProviders');
  const { generateImages } = await import('../../../src/core/diffusion/generate');
  const backends = [{ name: 'cpu', bundled: true, installed: true }] as Parameters<typeof jobProviders>[1];
  const first: string[] = [], second: string[] = [];
  const pipe = await pipelineFor(MODEL, jobProviders('cpu', backends, (l) => first.push(l)), { fastUnet: 'on' });
  assert.equal(await pipelineFor(MODEL, jobProviders('cpu', backends, (l) => second.push(l)), { fastUnet: 'on' }), pipe);
  // the second job is the one generating when the UNet is rebuilt
  await generateImages(pipe, { prompt: 'a red circle', seed: 1, steps: 2, guidance: 3, eta: 1, count: 2, batchSize: 2, latentHeight: 8, latentWidth: 8 });
  assert.ok(!first.some((l) => /rebuilt/.test(l)), first.join('\n'));
  assert.deepEqual(second.filter((l) => /rebuilt/.test(l)).map((l) => l.replace(/\d+ attention/, 'N attention')),
    ['unet (rebuilt): execution provider: cpu', 'generation UNet rebuilt: float16, N attention cores fused']);
  const third: string[] = [];
  await pipelineFor(MODEL, jobProviders('cpu', backends, (l) => third.push(l)), { fastUnet: 'on' });
  assert.deepEqual(third, ['text_encoder/model.onnx: execution provider: cpu', 'unet (rebuilt): execution provider: cpu', 'unet/model.onnx: execution provider: cpu', 'vae_decoder/model.onnx: execution provider: cpu']);
  await releasePipelines();
});

test('a fine-tuning job opens its pipeline, training graph and sampling graph through the plan and still runs when WebGPU does not', { skip }, async () => {
  const dir = experiment();
  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({
    num_epochs: 1, reward: 'jpeg_incompressibility', sample_num_steps: 2, sample_batch_size: 2, sample_num_batches_per_epoch: 1,
    train_batch_size: 1, train_gradient_accumulation_steps: 2, eval_seeds: [0], latent_size: 8,
  }));
  const log: string[] = [];
  const run = await call('startFineTune', { experimentDir: dir, modelDir: MODEL, resume: false, executionProvider: 'auto' }, log);
  assert.deepEqual([run.firstEpoch, run.lastEpoch], [0, 0]);
  const opened = log.filter((l) => /: execution provider: /.test(l)).map((l) => l.split(': execution provider: ')[0]).sort();
  assert.deepEqual(opened, ['sampling graph', 'text_encoder/model.onnx', 'training graph', 'unet/model.onnx', 'vae_decoder/model.onnx']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('status opens a model with the setting to say which provider works here, and why the preferred one did not', async () => {
  const s = await call('status', { executionProvider: 'auto' }, []);
  assert.ok(s.providerChoice);
  assert.equal(/^execution provider: (\w+)/.exec(s.providerChoice!)?.[1], s.chosenExecutionProvider);
  if (s.chosenExecutionProvider === 'cpu' && s.executionProviders.includes('webgpu')) assert.match(s.providerChoice!, /webgpu failed: \S/);
  const cpu = await call('status', { executionProvider: 'cpu' }, []);
  assert.deepEqual([cpu.chosenExecutionProvider, cpu.providerChoice], ['cpu', 'execution provider: cpu']);
  assert.throws(() => handlers.status.parse({ executionProvider: 'gpu' }), /"executionProvider" must be one of/);
});
