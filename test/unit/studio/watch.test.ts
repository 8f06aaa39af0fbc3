import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { watchStudio } from '../../../src/core/studio/watch';

// Resolves when the watcher has reported a change; the test fails by timeout if it never does.
function nextChange(waiters: (() => void)[]): Promise<void> {
  return new Promise((resolve) => waiters.push(resolve));
}

test('the watcher reports .ddpo appearing, experiment folders added and removed by hand', { timeout: 15_000 }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-watch-'));
  const waiters: (() => void)[] = [];
  const w = watchStudio(ws, () => waiters.splice(0).forEach((r) => r()), 50);
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
