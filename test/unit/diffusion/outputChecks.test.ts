import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CliIO } from '../../../src/cli/command';
import { commands } from '../../../src/cli/commands';
import { runCli } from '../../../src/cli/dispatch';
import { imageDefect } from '../../../src/core/diffusion/outputChecks';

const TINY = join(__dirname, '../../../media/tiny-model');

async function generate(...more: string[]): Promise<{ code: number; err: string[] }> {
  const out = mkdtempSync(join(tmpdir(), 'gen-warn-'));
  const err: string[] = [];
  const io: CliIO = { out: () => undefined, err: (l) => err.push(l), progress: () => undefined, signal: new AbortController().signal };
  try {
    const code = await runCli(['generate', '--model', TINY, '--steps', '3', '--out', out, ...more], io, commands);
    return { code, err };
  } finally { rmSync(out, { recursive: true, force: true }); }
}

test('an absurd guidance warns that the images are blank or clipped and names the setting; a usual one is silent', async () => {
  const inf = await generate('--prompt', 'a red circle', '--count', '2', '--guidance', '1e308');
  assert.equal(inf.code, 0);
  assert.deepEqual(inf.err, [
    'warning: the latents of seed 0 became NaN or infinite at step 1 of 3, so its image is blank; guidance 1e+308 is far outside the usual 1 to 20: lower it',
    'warning: 2 of 2 images have NaN or infinite latents',
  ]);
  const clipped = await generate('--prompt', 'a red circle', '--guidance', '1e30');
  assert.match(clipped.err.join('\n'), /^warning: the image of seed 0 is clipped: 100% of its pixel values are pure 0 or 255; guidance 1e\+30 is far outside the usual 1 to 20: lower it$/);
  assert.deepEqual((await generate('--prompt', 'a red circle', '--count', '2')).err, []);
});

test('a prompt longer than the tokenizer reads warns once, saying how many tokens are dropped and from where', async () => {
  // The tiny model's tokenizer reads 16 tokens: 14 words between the start and end marks.
  const r = await generate('--prompt', 'a red circle a red circle a red circle a red circle a big blue square', '--count', '2');
  assert.equal(r.code, 0);
  assert.deepEqual(r.err, ['warning: the prompt "a red circle a red circle a red circle a…" is 16 tokens, but the text encoder reads 14 ' +
    '(16 with its start and end marks): the last 2, from "blue square", are ignored; shorten the prompt']);
});

test('a single-colour image is flat even when its latents are finite', () => {
  const image = { width: 2, height: 2, channels: 3 as const, data: new Uint8Array(12).fill(128) };
  assert.deepEqual(imageDefect([new Float32Array(4)], 0, 4, image), { kind: 'flat' });
  image.data[5] = 140;
  assert.equal(imageDefect([new Float32Array(4)], 0, 4, image), undefined);
});
