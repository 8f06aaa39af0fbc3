// The rating panel's trips: the worker's rate/undo replies carry the view, and the host redraws from them without
// reading ratings.jsonl again (the panel's session runs here over an in-memory worker, with no VS Code).
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { handlers } from '../../../src/worker/handlers';
import type { JobContext } from '../../../src/worker/jobs';
import { WorkerClient } from '../../../src/worker/client';
import { RatingSession, type RatingSessionHost, type RatingSource } from '../../../src/extension/panels/ratingSession';
import { blindImageName, compareQueue, saveManifest, type CompareManifest } from '../../../src/core/studio/compare';
import { PAIR_FILE, type StoredPair } from '../../../src/core/studio/pairs';
import { RATINGS_FILE, readRatings } from '../../../src/core/reward/store';
import type { HostToRating, ParamsOf, RatingView, ResultOf } from '../../../src/protocol';
import { memoryChannels } from '../worker/memoryChannel';

/** An experiment folder with `n` generated pairs on disk (no images: nothing here opens them). */
function experiment(n: number): { dir: string; pairs: StoredPair[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-rating-session-'));
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({ schemaVersion: 1, name: path.basename(dir), prompts: ['a red circle'] }));
  const pairs = Array.from({ length: n }, (_, i): StoredPair => {
    const pairId = `pair-${2 * i}-x`;
    return { pairId, prompt: 'a red circle', a: `samples/${pairId}/a.png`, b: `samples/${pairId}/b.png`, seeds: [2 * i, 2 * i + 1], createdAt: new Date(1e12 + i).toISOString() };
  });
  for (const p of pairs) {
    fs.mkdirSync(path.join(dir, 'samples', p.pairId), { recursive: true });
    fs.writeFileSync(path.join(dir, 'samples', p.pairId, PAIR_FILE), JSON.stringify(p));
  }
  return { dir, pairs };
}

async function call<K extends 'rate' | 'undo'>(kind: K, params: ParamsOf<K>): Promise<ResultOf<K>> {
  const h = handlers[kind];
  const ctx = { signal: new AbortController().signal, progress: () => undefined, log: () => undefined } as unknown as JobContext<K>;
  return h.run(h.parse(params) as never, ctx) as Promise<ResultOf<K>>;
}

function rateParams(dir: string, p: { pairId: string; prompt: string; left: string; right: string; sideOrder: 'ab' | 'ba'; repeatOf?: string }, choice: 'left' | 'right' | 'tie' | 'skip', compareId?: string): ParamsOf<'rate'> {
  return { experimentDir: dir, compareId, pairId: p.pairId, prompt: p.prompt, left: p.left, right: p.right, choice, sideOrder: p.sideOrder, repeatOf: p.repeatOf };
}

test('the worker\'s rate and undo replies carry the count, consistency, what Undo takes back and the repeats due', async () => {
  const { dir, pairs } = experiment(8);
  let r!: ResultOf<'rate'>;
  for (const p of pairs.slice(0, 5)) r = await call('rate', rateParams(dir, { ...p, left: p.a, right: p.b, sideOrder: 'ab' }, 'left'));
  assert.equal(r.rated, 5);
  assert.deepEqual(r.last, { id: r.ratingId, pairId: pairs[4].pairId });
  assert.deepEqual(r.ratedPairs, pairs.slice(0, 5).map((p) => p.pairId));
  assert.deepEqual([r.consistency, r.repeats], [null, 0]);
  assert.equal(r.dueRepeats.length, 1, 'a side-swapped repeat is due after 5 ratings');
  const rep = r.dueRepeats[0];
  const orig = pairs.find((p) => p.pairId === rep.pairId)!;
  assert.deepEqual([rep.left, rep.right, rep.id], [orig.b, orig.a, `${rep.pairId}~${rep.repeatOf}`]);

  // the same image wins with its sides swapped: one consistent repeat
  const again = await call('rate', rateParams(dir, rep, 'right'));
  assert.deepEqual([again.rated, again.repeats, again.consistency, again.dueRepeats.length], [6, 1, 1, 0]);
  assert.deepEqual(again.last, { id: again.ratingId, pairId: rep.pairId, repeatOf: rep.repeatOf });

  const undone = await call('undo', { experimentDir: dir, ratingId: again.ratingId });
  assert.deepEqual([undone.rated, undone.repeats, undone.consistency, undone.dueRepeats.length], [5, 0, null, 1]);
  assert.deepEqual(undone.last, { id: r.ratingId, pairId: pairs[4].pairId });
  assert.equal(undone.winRate, undefined);
});

test('in a blind comparison the reply carries the win rate: a tie counts half, a skip not at all', async () => {
  const { dir } = experiment(0);
  const items = Array.from({ length: 4 }, (_, k) => ({ pairId: `cmp-${k}`, prompt: 'p', seed: k, a: blindImageName(), b: blindImageName() }));
  const m: CompareManifest = { id: 'epoch-000001-20260101T000000', a: { kind: 'base' }, b: { kind: 'checkpoint', algorithm: 'ddpo', epoch: 1 }, createdAt: new Date().toISOString(), items };
  await saveManifest(dir, m);
  const q = compareQueue(dir, m);
  const tunedSide = (i: number) => (q[i].left === items.find((it) => it.pairId === q[i].pairId)!.b ? 'left' : 'right');
  await call('rate', rateParams(dir, q[0], tunedSide(0), m.id));
  await call('rate', rateParams(dir, q[1], 'tie', m.id));
  const r = await call('rate', rateParams(dir, q[2], 'skip', m.id));
  assert.equal(r.rated, 3);
  assert.deepEqual(r.dueRepeats, [], 'a comparison shows each pair once');
  assert.equal(r.winRate?.n, 2);
  assert.equal(r.winRate?.rate, 1.5 / 2);
  assert.deepEqual(r.ratedPairs, [q[0].pairId, q[1].pairId, q[2].pairId]);
});

/** A session over `worker`, recording what it posts and logs. */
function session(src: RatingSource, worker: RatingSessionHost['worker']): { s: RatingSession; posts: HostToRating[]; logs: string[] } {
  const posts: HostToRating[] = [];
  const logs: string[] = [];
  const s = new RatingSession(src, {
    worker, post: (m) => posts.push(structuredClone(m)), imageUri: (rel) => `webview-uri:${rel}`, log: (l) => logs.push(l),
    generationFailed: () => assert.fail('nothing generates here'), executionProvider: () => 'cpu', restoreKey: 'key-1',
  });
  return { s, posts, logs };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), `timed out waiting until ${what}`);
}

const views = (posts: HostToRating[]): RatingView[] => posts.flatMap((m) => (m.type === 'rating' ? [m.view] : []));

test('a rating makes one trip: the host redraws from the worker\'s reply and reads ratings.jsonl only when the panel opens', async (t) => {
  const { dir, pairs } = experiment(6);
  await call('rate', rateParams(dir, { ...pairs[0], left: pairs[0].a, right: pairs[0].b, sideOrder: 'ab' }, 'left'));
  const stack = Error.stackTraceLimit;
  Error.stackTraceLimit = 50;
  t.after(() => void (Error.stackTraceLimit = stack));
  // Every read of the log, and whether the host's session made it (the worker runs in this process too).
  const reads: { host: boolean }[] = [];
  const readFileSync = fs.readFileSync;
  mock.method(fs, 'readFileSync', function (this: unknown, ...args: Parameters<typeof fs.readFileSync>) {
    if (String(args[0]).endsWith(RATINGS_FILE)) reads.push({ host: /ratingSession\.ts/.test(new Error().stack ?? '') });
    return readFileSync.apply(this, args);
  });
  t.after(() => mock.restoreAll());
  const client = new WorkerClient(memoryChannels(handlers).factory);
  t.after(() => client.dispose());
  const { s, posts } = session({ mode: 'rate', experiment: 'x', experimentDir: dir, target: 10 }, client);

  s.receive({ type: 'ready' });
  assert.deepEqual(posts[0], { type: 'restoreKey', key: 'key-1' });
  const opened = views(posts).at(-1)!;
  assert.deepEqual([opened.rated, opened.canUndo, opened.items.length], [1, true, 5]);
  assert.equal(opened.items[0].leftUri.startsWith('webview-uri:samples/'), true, 'the webview gets URIs, the host keeps paths');
  assert.deepEqual(reads, [{ host: true }], 'the host reads the log once, when the webview asks for its state');

  const first = opened.items[0];
  s.receive({ type: 'rate', itemId: first.id, choice: 'right', elapsedMs: 700 });
  await until('the rating is saved and redrawn', () => views(posts).at(-1)!.rated === 2);
  assert.deepEqual(posts.find((m) => m.type === 'saved'), { type: 'saved', itemId: first.id, rated: 2 });
  const after = views(posts).at(-1)!;
  assert.ok(!after.items.some((i) => i.id === first.id), 'the rated pair left the queue');
  assert.equal(after.canUndo, true);

  s.receive({ type: 'undo' });
  await until('the undo is redrawn', () => views(posts).at(-1)!.rated === 1);
  assert.equal(views(posts).at(-1)!.items[0].id, first.id, 'the undone pair comes back first');

  assert.equal(reads.filter((r) => r.host).length, 1, 'no read of ratings.jsonl by the host after a rating or an undo');
  assert.ok(reads.filter((r) => !r.host).length >= 2, 'the worker read the log for each reply (so the spy sees reads)');
});

test('the session redraws from the reply alone: what the worker says is what the panel shows', async () => {
  const { dir } = experiment(3);
  const requests: string[] = [];
  const reply = { rated: 41, consistency: 0.9, repeats: 7, last: { id: 'r-41', pairId: 'pair-0-x' }, ratedPairs: ['pair-0-x'], dueRepeats: [] };
  const worker = { request: async (kind: string) => (requests.push(kind), { ratingId: 'r-41', ...reply }) } as unknown as RatingSessionHost['worker'];
  const { s, posts } = session({ mode: 'rate', experiment: 'x', experimentDir: dir, target: 50 }, worker);
  s.receive({ type: 'ready' });
  s.receive({ type: 'rate', itemId: 'pair-0-x', choice: 'left', elapsedMs: 1 });
  await until('the reply is drawn', () => views(posts).at(-1)!.rated === 41);
  const v = views(posts).at(-1)!;
  assert.deepEqual([v.rated, v.consistency, v.repeats, v.canUndo], [41, 0.9, 7, true]);
  assert.deepEqual(v.items.map((i) => i.id), ['pair-2-x', 'pair-4-x'], 'the queue leaves out the pairs the reply says are rated');
  assert.deepEqual(requests, ['rate']);
});

test('a message meant for another panel, a malformed one or a wrong field type is logged and nothing is done', () => {
  const { dir } = experiment(2);
  const requests: string[] = [];
  const worker = { request: async (kind: string) => void requests.push(kind) } as unknown as RatingSessionHost['worker'];
  const { s, posts, logs } = session({ mode: 'rate', experiment: 'x', experimentDir: dir, target: 10 }, worker);
  for (const raw of [{ type: 'stopRun' }, { type: 'addPrompt', prompt: 'a cat' }, { type: 'openExperimentFile' }, 'undo', null, { type: 'rate', itemId: 3, choice: 'left', elapsedMs: 1 }]) s.receive(raw);
  assert.deepEqual(posts, []);
  assert.deepEqual(requests, []);
  assert.equal(logs.length, 6);
  assert.ok(logs.every((l) => l.startsWith('[host] rejected a rating panel message: ')), logs.join('\n'));
  assert.match(logs[0], /unknown type "stopRun"/);
  assert.match(logs[5], /field "itemId" should be string/);
});

// The message's shape is checked at the edge; what it names is checked here: only a pair the panel shows, with one
// of the four answers, ever reaches ratings.jsonl (the reward model trains on whatever that file holds).
test('a rating for a pair not shown, or with an answer that is no choice, is logged and never sent to the worker', async () => {
  const { dir, pairs } = experiment(2);
  const requests: unknown[] = [];
  const reply = { ratingId: 'r-1', rated: 1, consistency: null, repeats: 0, last: null, ratedPairs: [], dueRepeats: [] };
  const worker = { request: async (kind: string, params: unknown) => (requests.push([kind, params]), reply) } as unknown as RatingSessionHost['worker'];
  const { s, logs } = session({ mode: 'rate', experiment: 'x', experimentDir: dir, target: 10 }, worker);
  s.receive({ type: 'ready' });
  for (const [itemId, choice] of [[pairs[0].pairId, 'bogus'], [pairs[0].pairId, 'LEFT'], [pairs[1].pairId, ''], ['../../etc/passwd', 'left'], ['pair-9-not-shown', 'left']]) {
    s.receive({ type: 'rate', itemId, choice, elapsedMs: 5 });
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(requests, []);
  assert.equal(logs.filter((l) => l.startsWith('[host] ignored a rating')).length, 5, logs.join('\n'));
  s.receive({ type: 'rate', itemId: pairs[0].pairId, choice: 'left', elapsedMs: 5 });
  await until('the valid rating is sent', () => requests.length === 1);
});

test('each rating stores as `left` the image the webview showed on the left, for fresh pairs and side-swapped repeats alike', async (t) => {
  const { dir } = experiment(8);
  const client = new WorkerClient(memoryChannels(handlers).factory);
  t.after(() => client.dispose());
  const { s, posts } = session({ mode: 'rate', experiment: 'x', experimentDir: dir, target: 10 }, client);
  s.receive({ type: 'ready' });
  const choices = ['left', 'right', 'left', 'left', 'right', 'right', 'left'] as const;
  for (const [k, choice] of choices.entries()) {
    const shown = views(posts).at(-1)!.items[0];
    s.receive({ type: 'rate', itemId: shown.id, choice, elapsedMs: 5 });
    await until(`rating ${k + 1} is saved`, () => views(posts).at(-1)!.rated === k + 1);
    const stored = readRatings(dir).ratings.at(-1)!;
    assert.deepEqual([`webview-uri:${stored.left}`, `webview-uri:${stored.right}`, stored.choice], [shown.leftUri, shown.rightUri, choice], `rating ${k + 1} (${shown.id})`);
  }
  assert.ok(readRatings(dir).ratings.some((r) => r.repeatOf), 'a side-swapped repeat came due and was checked too');
});
