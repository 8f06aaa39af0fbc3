// Every path read from a file the person (or a webview) can edit goes through the inside-the-experiment resolver:
// a `../` path and a symlink leading out are refused or left out, for each such file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_DDPO_CONFIG } from '../../../src/core/ddpo/config';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { startOrResume } from '../../../src/core/ddpo/resume';
import type { Policy } from '../../../src/core/ddpo/types';
import { COMPARE_DIR, listComparisons, MANIFEST_FILE, type CompareManifest } from '../../../src/core/studio/compare';
import { listPairs, PAIR_FILE } from '../../../src/core/studio/pairs';
import { readRunState } from '../../../src/core/studio/runState';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-editable-paths-'));

// An experiment with a sibling folder outside it, and a symlink `out` inside it that leads there.
function experimentBesideOutside(): { dir: string; outside: string } {
  const parent = tmp();
  const dir = path.join(parent, 'exp'), outside = path.join(parent, 'other');
  fs.mkdirSync(dir);
  fs.mkdirSync(outside);
  fs.symlinkSync(outside, path.join(dir, 'out'));
  return { dir, outside };
}

test('resume_from in ddpo.json names a checkpoint inside the experiment: ../ and a symlink out are refused before loading', async () => {
  const { dir } = experimentBesideOutside();
  const layout = ddpoLayout(dir);
  const policy = { loadState: async () => assert.fail('no checkpoint outside the experiment may be loaded') } as unknown as Policy;
  for (const from of ['../other/ddpo/checkpoints/epoch-000003', 'out/ddpo/checkpoints/epoch-000003', path.join(dir, '..', 'other')]) {
    await assert.rejects(startOrResume({ config: { ...DEFAULT_DDPO_CONFIG, resume_from: from }, layout, policy, log: () => undefined }),
      /resume_from ".*" in .*ddpo\.json is not inside the experiment .*name one of its checkpoints/, from);
  }
  await assert.rejects(startOrResume({ config: { ...DEFAULT_DDPO_CONFIG, resume_from: 'ddpo/checkpoints/epoch-000003' }, layout, policy, log: () => undefined }),
    /epoch-000003/, 'a path inside is tried (and here is missing)');
});

test('evaluation images named in metrics.jsonl outside the experiment are left out of the dashboard', () => {
  const { dir } = experimentBesideOutside();
  fs.mkdirSync(path.join(dir, 'ddpo'));
  const images = ['ddpo/eval/epoch-000000/p0-s0.png', '../other/secret.png', 'out/secret.png', '/etc/passwd'];
  const line = { epoch: 0, reward_mean: 1, reward_std: 0, approx_kl: 0, clipfrac: 0, eval: images.map((image, seed) => ({ prompt: 'p', seed, image, reward: 1 })) };
  fs.writeFileSync(ddpoLayout(dir).metricsFile, JSON.stringify(line) + '\n');
  assert.deepEqual(readRunState(dir, false).evalImages.map((e) => e.image), ['ddpo/eval/epoch-000000/p0-s0.png']);
});

test('a comparison manifest naming an image outside its folder (../ or through a symlink) is refused', () => {
  const { dir } = experimentBesideOutside();
  const manifest = (id: string, base: string): CompareManifest => ({ id, a: { kind: 'base' }, b: { kind: 'checkpoint', algorithm: 'ddpo', epoch: 0 }, createdAt: `2026-01-01T00:00:0${id.length % 10}Z`, items: [{ pairId: 'p', prompt: 'x', seed: 0, a: base, b: 'images/b.png' }] });
  const write = (m: CompareManifest) => {
    fs.mkdirSync(path.join(dir, COMPARE_DIR, m.id, 'images'), { recursive: true });
    fs.writeFileSync(path.join(dir, COMPARE_DIR, m.id, MANIFEST_FILE), JSON.stringify(m));
  };
  write(manifest('good', 'images/a.png'));
  write(manifest('dotdot', '../../../other/a.png'));
  write(manifest('abs', '/etc/passwd'));
  write(manifest('linked', 'images/out/a.png'));
  fs.symlinkSync(path.join(dir, '..', 'other'), path.join(dir, COMPARE_DIR, 'linked', 'images', 'out'));
  // the second image of an item is checked as the first is
  write({ ...manifest('b-dotdot', 'images/a.png'), items: [{ pairId: 'p', prompt: 'x', seed: 0, a: 'images/a.png', b: '../../../other/b.png' }] });
  write({ ...manifest('b-linked', 'images/a.png'), items: [{ pairId: 'p', prompt: 'x', seed: 0, a: 'images/a.png', b: 'images/out/b.png' }] });
  fs.symlinkSync(path.join(dir, '..', 'other'), path.join(dir, COMPARE_DIR, 'b-linked', 'images', 'out'));
  assert.deepEqual(listComparisons(dir).map((m) => m.id), ['good']);
});

test('a pair.json naming an image outside the experiment (../ or through a symlink) is left out of the queue', () => {
  const { dir } = experimentBesideOutside();
  const pair = (pairId: string, a: string, b = `samples/${pairId}/b.png`) => {
    fs.mkdirSync(path.join(dir, 'samples', pairId), { recursive: true });
    fs.writeFileSync(path.join(dir, 'samples', pairId, PAIR_FILE), JSON.stringify({ pairId, prompt: 'x', a, b, seeds: [0, 1], createdAt: '2026-01-01T00:00:00Z' }));
  };
  pair('pair-0-good', 'samples/pair-0-good/a.png');
  pair('pair-2-dotdot', '../other/a.png');
  pair('pair-4-link', 'out/a.png');
  pair('pair-6-abs', '/etc/passwd');
  // the second image of a pair is checked as the first is
  pair('pair-8-b-dotdot', 'samples/pair-8-b-dotdot/a.png', '../other/b.png');
  pair('pair-10-b-link', 'samples/pair-10-b-link/a.png', 'out/b.png');
  assert.deepEqual(listPairs(dir).map((p) => p.pairId), ['pair-0-good']);
});
