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
