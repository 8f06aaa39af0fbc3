// The studio's worker jobs end to end on the embedded tiny model (skipped when media/tiny-model is absent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { handlers } from '../../../src/worker/handlers';
import type { JobContext } from '../../../src/worker/jobs';
import type { ParamsOf, ResultOf, WorkerRequestKind } from '../../../src/protocol';
import { readRatings } from '../../../src/core/reward/store';
import { listComparisons } from '../../../src/core/studio/compare';
import { needsTinyModel } from '../fixtures';

const MODEL = path.resolve(__dirname, '../../../media/tiny-model');
const skip = needsTinyModel();

function experiment(ddpo: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-studio-worker-'));
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({
    schemaVersion: 1, name: path.basename(dir), createdAt: new Date().toISOString(), baseModel: { id: 'embedded:tiny-shapes', path: MODEL },
    prompts: ['a big red circle on a blue background', 'a small green triangle on a white background'], settings: { steps: 4, guidanceScale: 3, imageSize: 32, seed: 0 },
  }));
  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({ sample_num_steps: 4, sample_batch_size: 2, sample_num_batches_per_epoch: 1, train_batch_size: 1, train_gradient_accumulation_steps: 2, eval_seeds: [0], latent_size: 16, ...ddpo }));
  return dir;
}

async function call<K extends WorkerRequestKind>(kind: K, params: ParamsOf<K> | Record<string, unknown>, opts: { signal?: AbortSignal; progress?: (p: unknown) => void } = {}): Promise<ResultOf<K>> {
  const h = handlers[kind];
  const ctx = { signal: opts.signal ?? new AbortController().signal, progress: opts.progress ?? (() => undefined), log: () => undefined } as unknown as JobContext<K>;
  return h.run(h.parse(params), ctx);
}

test('pairs are generated ahead, each rating is on disk when the reply comes, undo retracts, paths cannot escape', { skip }, async () => {
  const dir = experiment({});
  const seen: string[] = [];
  const { pairs } = await call('generatePairs', { experimentDir: dir, modelDir: MODEL, count: 3 }, { progress: (p) => seen.push((p as { pair?: { pairId: string } }).pair?.pairId ?? '') });
  assert.deepEqual(seen, pairs.map((p) => p.pairId), 'each pair is reported as soon as it is written');
  for (const p of pairs) for (const f of [p.a, p.b, `samples/${p.pairId}/pair.json`]) assert.ok(fs.existsSync(path.join(dir, f)), f);
  const p = pairs[0];
  const r = await call('rate', { experimentDir: dir, pairId: p.pairId, prompt: p.prompt, left: p.a, right: p.b, choice: 'left', sideOrder: 'ab' });
  assert.equal(readRatings(dir).ratings.at(-1)?.id, r.ratingId);
  assert.equal(r.rated, 1);
  await assert.rejects(call('rate', { experimentDir: dir, pairId: 'x', prompt: '', left: '../../../etc/passwd', right: p.b, choice: 'left', sideOrder: 'ab' }), /not allowed inside/);
  await assert.rejects(call('rate', { experimentDir: dir, pairId: 'x', prompt: '', left: p.a, right: p.b, choice: 'best', sideOrder: 'ab' }), /"choice" must be one of/);
  assert.throws(() => handlers.rate.parse({ experimentDir: '/', pairId: 'x', left: 'a', right: 'b', choice: 'left', sideOrder: 'ab' }), /not an experiment folder/);
  assert.equal((await call('undo', { experimentDir: dir, ratingId: r.ratingId })).rated, 0);
  await assert.rejects(call('undo', { experimentDir: dir, ratingId: r.ratingId }), /no rating/);
});

test('reward training, a fine-tuning run reporting each epoch, a blind comparison and a LoRA export', { skip }, async () => {
  const dir = experiment({ num_epochs: 2, reward: 'learned' });
  const { pairs } = await call('generatePairs', { experimentDir: dir, modelDir: MODEL, count: 10 });
  for (const [i, p] of pairs.entries()) await call('rate', { experimentDir: dir, pairId: p.pairId, prompt: p.prompt, left: p.a, right: p.b, choice: i % 3 ? 'left' : 'right', sideOrder: 'ab' });
  const reward = await call('trainReward', { experimentDir: dir });
  assert.equal(reward.comparisons, 10);
  assert.ok(fs.existsSync(path.join(dir, 'reward', 'card.json')));
  const finished: number[] = [];
  const run = await call('startFineTune', { experimentDir: dir, modelDir: MODEL, resume: false }, { progress: (p) => { const f = (p as { finished?: { epoch: number } }).finished; if (f) finished.push(f.epoch); } });
  assert.deepEqual([run.firstEpoch, run.lastEpoch], [0, 1]);
  assert.deepEqual(finished, [0, 1]);
  const cmp = await call('compare', { experimentDir: dir, modelDir: MODEL, seedsPerPrompt: 1 });
  assert.equal(cmp.pairs, 2);
  const [m] = listComparisons(dir);
  assert.equal(m.id, cmp.compareId);
  for (const it of m.items) assert.notEqual(it.base, it.tuned);
  const exp = await call('exportLora', { experimentDir: dir, format: 'kohya' });
  assert.equal(exp.epoch, 1);
  assert.ok(fs.statSync(exp.file).size > 0);
  assert.ok(exp.file.startsWith(path.join(dir, 'exports') + path.sep));
});

test('stopFineTune stops a running fine-tuning, which keeps its checkpoints and says "stopped"', { skip }, async () => {
  const dir = experiment({ num_epochs: 50, reward: 'jpeg_incompressibility' });
  let stopped: Promise<unknown> | undefined;
  const run = call('startFineTune', { experimentDir: dir, modelDir: MODEL, resume: false }, {
    progress: (p) => {
      if ((p as { finished?: unknown }).finished && !stopped) stopped = call('stopFineTune', { experimentDir: dir });
    },
  });
  await assert.rejects(run);
  assert.deepEqual(await stopped, { stopped: true });
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'ddpo', 'status.json'), 'utf8')).state, 'stopped');
  assert.ok(fs.readdirSync(path.join(dir, 'ddpo', 'checkpoints')).includes('epoch-000000'));
  assert.deepEqual(await call('stopFineTune', { experimentDir: dir }), { stopped: false });
});
