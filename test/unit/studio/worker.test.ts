// The studio's worker jobs end to end on the embedded tiny model (skipped when media/tiny-model is absent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { handlers } from '../../../src/worker/handlers';
import type { JobContext } from '../../../src/worker/jobs';
import type { ParamsOf, ResultOf, WorkerRequestKind } from '../../../src/protocol';
import { readRatings } from '../../../src/core/reward/store';
import { listComparisons } from '../../../src/core/studio/compare';
import { RUN_LOCK_FILE } from '../../../src/core/experiment/runLock';
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

async function call<K extends WorkerRequestKind>(kind: K, params: ParamsOf<K> | Record<string, unknown>, opts: { signal?: AbortSignal; progress?: (p: unknown) => void; log?: (line: string) => void } = {}): Promise<ResultOf<K>> {
  const h = handlers[kind];
  const ctx = { signal: opts.signal ?? new AbortController().signal, progress: opts.progress ?? (() => undefined), log: opts.log ?? (() => undefined) } as unknown as JobContext<K>;
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
  const cardFile = path.join(dir, 'reward', 'card.json');
  assert.ok(fs.existsSync(cardFile));
  // Cancel in the notification stops a retraining at its first report and leaves the trained model as it was
  const card = fs.readFileSync(cardFile, 'utf8');
  const stop = new AbortController();
  await assert.rejects(call('trainReward', { experimentDir: dir }, { signal: stop.signal, progress: () => stop.abort() }), /abort/i);
  assert.equal(fs.readFileSync(cardFile, 'utf8'), card);
  const finished: number[] = [];
  const run = await call('startFineTune', { experimentDir: dir, modelDir: MODEL, resume: false }, { progress: (p) => { const f = (p as { finished?: { epoch: number } }).finished; if (f) finished.push(f.epoch); } });
  assert.deepEqual([run.firstEpoch, run.lastEpoch], [0, 1]);
  assert.deepEqual(finished, [0, 1]);
  const cmp = await call('compare', { experimentDir: dir, modelDir: MODEL, seedsPerPrompt: 1 });
  assert.equal(cmp.pairs, 2);
  const [m] = listComparisons(dir);
  assert.equal(m.id, cmp.compareId);
  for (const it of m.items) assert.notEqual(it.a, it.b);
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

test('pair generation tells the worker log of a cut prompt once and of images with no picture once, then how many', { skip }, async () => {
  const dir = experiment({});
  // the embedded model's text encoder reads 14 tokens; guidance 10000 clips every image to pure colours
  const long = 'a big red circle on a blue background next to a small yellow square in the top left corner, for the worker';
  const exp = JSON.parse(fs.readFileSync(path.join(dir, 'experiment.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({ ...exp, prompts: [long], settings: { ...exp.settings, guidanceScale: 10000 } }));
  const log: string[] = [];
  await call('generatePairs', { experimentDir: dir, modelDir: MODEL, count: 3 }, { log: (l) => log.push(l) });
  const warnings = log.filter((l) => l.startsWith('warning: '));
  assert.equal(warnings.length, 3, log.join('\n'));
  assert.match(warnings[0], /^warning: the prompt "a big red circle on a blue background ne…" is \d+ tokens, but the text encoder reads 14 .*; shorten the prompt$/);
  assert.match(warnings[1], /^warning: the image of seed \d+ is clipped: 100% of its pixel values are pure 0 or 255; guidance 10000 is far outside the usual 1 to 20: lower it$/);
  assert.equal(warnings[2], 'warning: 6 of 6 images are clipped to pure colours');
  const again: string[] = [];
  await call('generatePairs', { experimentDir: dir, modelDir: MODEL, count: 1 }, { log: (l) => again.push(l) });
  assert.ok(!again.some((l) => /the prompt/.test(l)), `the cut prompt is told once: ${again.join('\n')}`);
});

test('startFineTune runs a reward script only with the confirmation of its path and content the host sends', { skip }, async () => {
  const dir = experiment({ num_epochs: 1, reward: 'script:score.mjs' });
  const file = path.join(dir, 'score.mjs');
  fs.writeFileSync(file, 'export default (images) => images.map(() => 0.25);');
  const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const start = (rewardScript?: unknown) => call('startFineTune', { experimentDir: dir, modelDir: MODEL, resume: false, ...(rewardScript ? { rewardScript } : {}) });
  await assert.rejects(start(), /will not run: it has not been confirmed/);
  await assert.rejects(start({ file, sha256: sha256.replace(/^./, (c) => (c === '0' ? '1' : '0')) }), /will not run: it changed since it was confirmed/);
  assert.throws(() => handlers.startFineTune.parse({ experimentDir: dir, modelDir: MODEL, rewardScript: { file: 'score.mjs', sha256 } }), /absolute path/);
  assert.ok(!fs.existsSync(path.join(dir, 'ddpo', 'metrics.jsonl')), 'nothing ran');
  const run = await start({ file, sha256 });
  assert.deepEqual([run.firstEpoch, run.lastEpoch], [0, 0]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'ddpo', 'metrics.jsonl'), 'utf8').split('\n')[0]).reward_mean, 0.25);
});

test('every job that writes an experiment refuses while `ddpo train` holds it, naming it; rating goes on', { skip }, async () => {
  const dir = experiment({ num_epochs: 1, reward: 'jpeg_incompressibility' });
  const { pairs } = await call('generatePairs', { experimentDir: dir, modelDir: MODEL, count: 1 });
  // pid 1 always runs, as a `ddpo train` in a terminal would
  fs.writeFileSync(path.join(dir, RUN_LOCK_FILE), JSON.stringify({ pid: 1, host: os.hostname(), since: '2026-01-01T00:00:00.000Z', what: 'ddpo train', token: 't' }));
  const busy = (e: Error) => e.message.startsWith(`${dir} is in use by ddpo train (pid 1 on this machine, since 2026-01-01T00:00:00.000Z); wait for it to finish or stop it, then try again`);
  const before = fs.readdirSync(dir).sort();
  await assert.rejects(call('generatePairs', { experimentDir: dir, modelDir: MODEL, count: 1 }), busy);
  await assert.rejects(call('trainReward', { experimentDir: dir }), busy);
  await assert.rejects(call('startFineTune', { experimentDir: dir, modelDir: MODEL, resume: false }), busy);
  await assert.rejects(call('compare', { experimentDir: dir, modelDir: MODEL, seedsPerPrompt: 1 }), busy);
  await assert.rejects(call('exportLora', { experimentDir: dir, format: 'kohya' }), busy);
  assert.deepEqual(fs.readdirSync(dir).sort(), before, 'nothing was written');
  const p = pairs[0];
  const r = await call('rate', { experimentDir: dir, pairId: p.pairId, prompt: p.prompt, left: p.a, right: p.b, choice: 'left', sideOrder: 'ab' });
  assert.equal(r.rated, 1);
});
