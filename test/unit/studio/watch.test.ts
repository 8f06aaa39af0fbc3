import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { watchStudio } from '../../../src/core/studio/watch';
import { ExperimentStore } from '../../../src/core/experiment/store';
import { atomicWriteFile } from '../../../src/core/fsutil';
import { compareDir, newCompareId, saveManifest } from '../../../src/core/studio/compare';
import { checkpointName, ddpoLayout } from '../../../src/core/ddpo/layout';

// Resolves when the watcher has reported a change; the test fails by timeout if it never does.
function nextChange(waiters: (() => void)[]): Promise<void> {
  return new Promise((resolve) => waiters.push(resolve));
}

test('the watcher reports .ddpo appearing, experiment folders added and removed by hand', { timeout: 15_000 }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-watch-'));
  const waiters: (() => void)[] = [];
  const w = watchStudio(ws, () => waiters.splice(0).forEach((r) => r()), { debounceMs: 50 });
  try {
    await w.ready;
    let change = nextChange(waiters);
    fs.mkdirSync(path.join(ws, '.ddpo', 'by-hand'), { recursive: true });
    await change;
    change = nextChange(waiters);
    fs.writeFileSync(path.join(ws, '.ddpo', 'by-hand', 'experiment.json'), '{}');
    await change;
    change = nextChange(waiters);
    fs.rmSync(path.join(ws, '.ddpo', 'by-hand'), { recursive: true });
    await change;
  } finally {
    await w.close();
  }
});

test('only the workspace root, .ddpo and experiment folders are watched, not the rest of the workspace', { timeout: 15_000 }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-watch-'));
  fs.mkdirSync(path.join(ws, '.ddpo', 'exp', 'images'), { recursive: true });
  fs.mkdirSync(path.join(ws, 'node_modules', 'big'), { recursive: true });
  const w = watchStudio(ws, () => undefined);
  try {
    await w.ready;
    const watched = new Set(w.watchedDirs());
    assert.ok(watched.has(path.join(ws, '.ddpo', 'exp')), `experiment folder watched: ${[...watched].join(', ')}`);
    assert.ok(!watched.has(path.join(ws, 'node_modules')) && !watched.has(path.join(ws, 'node_modules', 'big')));
    assert.ok(!watched.has(path.join(ws, '.ddpo', 'exp', 'images')));
  } finally {
    await w.close();
  }
});

// The Experiments tree redraws from this watch alone after a rating (the rating panel does not refresh it too).
test('a rating appended to an experiment\'s or a comparison\'s ratings.jsonl is reported once, for its experiment', { timeout: 15_000 }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-watch-'));
  const exp = path.join(ws, '.ddpo', 'exp');
  const cmp = path.join(exp, 'compare', 'epoch-000001-20260101T000000');
  fs.mkdirSync(cmp, { recursive: true });
  const rating = (n: number) => JSON.stringify({ kind: 'rating', id: `r${n}`, pairId: `p${n}`, prompt: '', left: 'a.png', right: 'b.png', choice: 'left', time: '', rater: 't', sideOrder: 'ab' }) + '\n';
  for (const dir of [exp, cmp]) fs.writeFileSync(path.join(dir, 'ratings.jsonl'), rating(0));
  const seen: (string | undefined)[] = [];
  const waiters: (() => void)[] = [];
  const w = watchStudio(ws, (name) => (seen.push(name), waiters.splice(0).forEach((r) => r())));
  try {
    await w.ready;
    for (const dir of [exp, cmp]) {
      seen.length = 0;
      const change = nextChange(waiters);
      fs.appendFileSync(path.join(dir, 'ratings.jsonl'), rating(1));
      await change;
      await new Promise((r) => setTimeout(r, 400));
      assert.deepEqual(seen, ['exp'], `one change for ${path.relative(ws, dir)}/ratings.jsonl`);
    }
  } finally {
    await w.close();
  }
});

// The Experiments tree redraws from this watch alone after every change the studio makes on disk (the commands and
// the experiment panel do not refresh it too): each is reported once, also when its writer takes a while between the
// folder it makes first and the file that shows (reward training, a comparison's renders, a checkpoint's tensors).
test('each change the studio makes to an experiment is reported once, for its experiment', { timeout: 30_000 }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-watch-'));
  const store = new ExperimentStore(ws);
  await store.create('exp', { prompts: ['a cat'] });
  const dir = store.dirOf('exp');
  const seen: (string | undefined)[] = [];
  const waiters: (() => void)[] = [];
  const w = watchStudio(ws, (name) => (seen.push(name), waiters.splice(0).forEach((r) => r())));
  const slow = () => new Promise((r) => setTimeout(r, 400));
  const changes: [string, () => Promise<unknown>][] = [
    ['a prompt added in the experiment panel', async () => {
      await store.update('exp', (exp) => ({ ...exp, prompts: [...exp.prompts, 'a dog'] }));
    }],
    ['a new experiment with its ddpo.json', async () => {
      await store.create('exp2');
      fs.writeFileSync(path.join(store.dirOf('exp2'), 'ddpo.json'), '{}\n');
    }],
    ['a reward model trained', async () => {
      fs.mkdirSync(path.join(dir, 'reward', 'embeddings'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'reward', 'embeddings', 'cache.bin'), 'x');
      await slow();
      await atomicWriteFile(path.join(dir, 'reward', 'head.safetensors'), 'x');
      await atomicWriteFile(path.join(dir, 'reward', 'card.json'), '{}');
    }],
    ['a blind comparison rendered', async () => {
      const id = newCompareId({ kind: 'base' }, { kind: 'checkpoint', algorithm: 'ddpo', epoch: 0 });
      fs.mkdirSync(path.join(compareDir(dir, id), 'images'), { recursive: true });
      fs.writeFileSync(path.join(compareDir(dir, id), 'images', 'x.png'), 'x');
      await slow();
      await saveManifest(dir, { id, a: { kind: 'base' }, b: { kind: 'checkpoint', algorithm: 'ddpo', epoch: 0 }, createdAt: '', items: [] });
    }],
    ['a checkpoint saved', async () => {
      // as saveCheckpoint does: the tensors into a temporary folder, renamed in whole
      const tmp = path.join(ddpoLayout(dir).checkpointsDir, '.tmp-epoch-000000-1-abc');
      fs.mkdirSync(tmp, { recursive: true });
      fs.writeFileSync(path.join(tmp, 'state.json'), '{}');
      await slow();
      fs.renameSync(tmp, path.join(ddpoLayout(dir).checkpointsDir, checkpointName(0)));
    }],
    ['a Diffusion-DPO epoch logged and its checkpoint saved', async () => {
      const l = ddpoLayout(dir, 'diffusion-dpo');
      fs.mkdirSync(l.checkpointsDir, { recursive: true });
      fs.appendFileSync(l.metricsFile, '{"epoch":0}\n');
      const tmp = path.join(l.checkpointsDir, '.tmp-epoch-000000-1-abc');
      fs.mkdirSync(tmp, { recursive: true });
      fs.writeFileSync(path.join(tmp, 'state.json'), '{}');
      fs.renameSync(tmp, path.join(l.checkpointsDir, checkpointName(0)));
    }],
    ['an experiment deleted', () => fs.promises.rm(store.dirOf('exp2'), { recursive: true, force: true })],
  ];
  try {
    await w.ready;
    for (const [what, change] of changes) {
      seen.length = 0;
      const reported = nextChange(waiters);
      await change();
      await reported;
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(seen.length, 1, `${what}: reported ${seen.length} times (${seen.join(', ')})`);
      assert.ok(seen[0] === 'exp' || (seen[0] === 'exp2' && /experiment/.test(what)), `${what}: reported for ${seen[0]}`);
    }
  } finally {
    await w.close();
  }
});

// The other half of "refreshed once": the host adds no explicit refresh where the watch above sees the change.
test('the host refreshes the Experiments tree explicitly only where the watch cannot see the change', () => {
  const root = path.resolve(__dirname, '../../../src/extension');
  const calls: Record<string, number> = {};
  for (const f of fs.readdirSync(root, { recursive: true }) as string[]) {
    if (!f.endsWith('.ts')) continue;
    const n = (fs.readFileSync(path.join(root, f), 'utf8').match(/\btree\.refresh\(\)/g) ?? []).length;
    if (n) calls[f.split(path.sep).join('/')] = n;
  }
  assert.deepEqual(calls, {
    // the Refresh command (also the way back should the watch fail)
    'commands/index.ts': 1,
    // the watch's own callback; the first load and another workspace folder (the watch reports no initial files);
    // a run starting or ending in this window (the tree tells running from interrupted by this window's runs)
    'extension.ts': 3,
  });
});

// Changes are debounced per experiment: a rating in one experiment while another's fine-tuning writes its metrics
// must refresh both experiments' panels, not only the one written last.
test('changes to two experiments within the debounce are both reported, each for its own experiment', { timeout: 15_000 }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-watch-'));
  for (const name of ['cats', 'dogs']) fs.mkdirSync(path.join(ws, '.ddpo', name, 'ddpo'), { recursive: true });
  const seen: (string | undefined)[] = [];
  const w = watchStudio(ws, (name) => seen.push(name), { debounceMs: 500 });
  try {
    await w.ready;
    fs.writeFileSync(path.join(ws, '.ddpo', 'cats', 'ratings.jsonl'), '{}\n');
    fs.writeFileSync(path.join(ws, '.ddpo', 'dogs', 'ddpo', 'metrics.jsonl'), '{}\n');
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual([...seen].sort(), ['cats', 'dogs']);
  } finally {
    await w.close();
  }
});
