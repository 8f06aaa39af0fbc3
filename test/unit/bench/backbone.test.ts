import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchBackboneCommand } from '../../../src/cli/benchBackbone';
import type { CliIO } from '../../../src/cli/command';
import { runCommand } from '../cli/runCommand';
import { writeTestClipFolder } from '../reward/helpers/clipFolder';

test('ddpo bench backbone reports milliseconds per image and per prompt, wall and CPU', async () => {
  const dir = writeTestClipFolder(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-bench-clip-')));
  const lines: string[] = [];
  const io: CliIO = { out: (l) => lines.push(l), err: (l) => lines.push(`ERR ${l}`), progress: () => {}, signal: new AbortController().signal };
  assert.equal(await runCommand(benchBackboneCommand, ['--backbone', dir, '--images', '3', '--size', '64', '--prompts', '2', '--json'], io), 0, lines.join('\n'));
  const r = JSON.parse(lines.at(-1)!);
  assert.equal(r.provider, 'cpu');
  assert.equal(r.dim, 16);
  for (const k of ['msPerImage', 'cpuMsPerImage', 'msPerPrompt', 'cpuMsPerPrompt']) assert.ok(Number.isFinite(r[k]) && r[k] >= 0, `${k}: ${r[k]}`);
  lines.length = 0;
  assert.equal(await runCommand(benchBackboneCommand, ['--backbone', 'builtin', '--images', '2', '--size', '16'], io), 0);
  assert.match(lines.join('\n'), /^built-in shape features on typescript, 31-d embeddings\nimages: [\d.]+ ms per image, [\d.]+ CPU ms \(2 images of 16 px in one call\)\nprompts: no text tower$/);
});
