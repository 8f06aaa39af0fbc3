// What the product writes into a checkout stays out of git and out of the VSIX.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '../../..');
const rules = (file: string) => fs.readFileSync(path.join(repo, file), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

test('`npm run demo` in the repo root leaves no untracked files: .ddpo/ is git-ignored and never packaged', () => {
  assert.ok(rules('.gitignore').some((r) => /^\/?\.ddpo\/?$/.test(r)), '.gitignore lists .ddpo/');
  const vsix = rules('.vscodeignore');
  // .vscodeignore excludes everything first, then re-includes what ships with "!" rules
  assert.equal(vsix[0], '**');
  assert.deepEqual(vsix.filter((r) => r.startsWith('!') && !/^!(dist|media|node_modules)\/|^!(README\.md|LICENSE)$/.test(r)), [], 'only the bundles, media, onnxruntime and the README ship');
});
