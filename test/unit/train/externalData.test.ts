// Models too large for one protobuf open from a temp folder with external data; forced here on the tiny UNet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../../../src/core/onnx/proto';
import { createSession, initializerBytes, openModel, runModel, type FeedValue } from '../../../src/core/runtime/ortRun';
import { TrainingSession } from '../../../src/core/train/session';
import { mulberry32 } from '../../../src/core/random';
import { needsTinyModel } from '../fixtures';

const UNET = path.resolve(__dirname, '../../../media/tiny-model/unet/model.onnx');
const skip = needsTinyModel();

function feeds(): Record<string, FeedValue> {
  const rnd = mulberry32(1);
  const fill = (n: number) => Float32Array.from({ length: n }, () => rnd() * 2 - 1);
  return {
    sample: { dims: [1, 4, 8, 8], data: fill(4 * 64) },
    timestep: { dims: [1], data: [500] },
    encoder_hidden_states: { dims: [1, 5, 32], data: fill(5 * 32) },
  };
}

test('a model over the threshold opens with external data, gives the in-memory outputs, and its temp folder goes on release', { skip }, async () => {
  const model = loadModel(UNET);
  assert.ok(initializerBytes(model) > 3_000_000, 'the tiny UNet has ~3.9 MB of weights');
  const memory = await createSession(model, { threads: 1 });
  const want = (await runModel(memory, model, feeds())).get('out_sample')!;
  await memory.release();

  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-extdata-test-'));
  const opened = await openModel(model, { threads: 1, externalDataAbove: 1_000_000, tempDir, name: 'tiny unet' });
  assert.equal(opened.ep, 'cpu');
  const dir = opened.externalDataDir!;
  assert.ok(dir.startsWith(tempDir + path.sep), dir);
  assert.ok(fs.statSync(path.join(dir, 'model.onnx_data')).size > 3_000_000, 'the weights live in model.onnx_data');
  assert.ok(fs.statSync(path.join(dir, 'model.onnx')).size < 1_000_000, 'the graph file holds no big tensors');
  const got = (await runModel(opened.session, model, feeds())).get('out_sample')!;
  assert.deepEqual(got.dims, want.dims);
  assert.deepEqual(got.data, want.data);
  await opened.session.release();
  assert.equal(fs.existsSync(dir), false, 'released sessions leave no temp folder behind');

  // under the threshold nothing touches the disk
  const small = await openModel(model, { threads: 1, tempDir });
  assert.equal(small.externalDataDir, undefined);
  await small.session.release();
  assert.deepEqual(fs.readdirSync(tempDir), []);
  fs.rmSync(tempDir, { recursive: true, force: true });
});

test('a graph onnxruntime rejects fails naming the graph and the temp folder, which is removed at once', { skip }, async () => {
  const model = loadModel(UNET);
  model.graph.nodes[0] = { ...model.graph.nodes[0], opType: 'NoSuchOp' };
  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-extdata-test-'));
  await assert.rejects(openModel(model, { externalDataAbove: 0, tempDir, name: 'broken unet' }), /onnxruntime rejected the graph broken unet \(saved with external data in .*ddpo-session-.*\): .*NoSuchOp/);
  assert.deepEqual(fs.readdirSync(tempDir), []);
  // with several providers each gets one line, and the last error is kept whole
  await assert.rejects(openModel(model, { name: 'broken unet', providers: { candidates: ['webgpu', 'cpu'] } }), /any execution provider:\n {2}webgpu: .*\n {2}cpu: .*\n {2}last error in full: .*NoSuchOp/);
  fs.rmSync(tempDir, { recursive: true, force: true });
});

test('a training session tries the given providers and reports where its graph opened', { skip }, async () => {
  const opened: string[] = [];
  const ts = await TrainingSession.create(loadModel(UNET), {
    lora: { rank: 2, alpha: 2, targets: ['to_q'] },
    objective: (m) => {
      const g = m.graph;
      g.nodes.push({ name: 'loss', opType: 'ReduceMean', domain: '', inputs: ['out_sample'], outputs: ['loss'], attrs: { keepdims: { type: 'int', value: 0 } } });
      g.outputs = [{ name: 'loss', elemType: 1, shape: [] }];
      return m;
    },
    inputShapes: { sample: [1, 4, 8, 8], timestep: [1], encoder_hidden_states: [1, 5, 32] },
    threads: 1,
    providers: { candidates: ['cpu'], onOpened: (what, o) => opened.push(`${what} on ${o.ep}`) },
  });
  assert.deepEqual(opened, ['training graph on cpu']);
  const r = await ts.step(feeds());
  assert.ok(Number.isFinite(r.loss) && r.grads.size > 0);
  await ts.release();
});

test('session folders left by a killed process are swept when the next large model opens; live owners keep theirs', { skip }, async () => {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-sweep-test-'));
  try {
    // a child that exits at once gives a pid that is surely dead afterwards
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const mk = (name: string, owner?: string) => {
      const d = path.join(parent, name);
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'model.onnx_data'), 'x');
      if (owner) fs.writeFileSync(path.join(d, 'owner.pid'), owner);
      return d;
    };
    const orphan = mk('ddpo-session-orphan', dead);
    const live = mk('ddpo-session-live', String(process.ppid));
    const unowned = mk('ddpo-session-unowned');
    const opened = await openModel(loadModel(UNET), { threads: 1, externalDataAbove: 1_000_000, tempDir: parent });
    assert.equal(fs.existsSync(orphan), false, 'the dead process\'s folder is gone');
    assert.ok(fs.existsSync(live) && fs.existsSync(unowned), 'a live owner\'s folder and one without an owner stay');
    assert.equal(fs.readFileSync(path.join(opened.externalDataDir!, 'owner.pid'), 'utf8'), String(process.pid));
    await opened.session.release();
  } finally { fs.rmSync(parent, { recursive: true, force: true }); }
});
