import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipTokenizer, cleanText, loadClipTokenizer } from '../../../src/core/diffusion/tokenizer';
import { needsFixture, referenceSd } from '../fixtures';

test('tokenizer reproduces every case of the CLIP reference oracle', { skip: needsFixture() }, () => {
  const dir = join(referenceSd, 'tokenizer');
  const oracle = JSON.parse(readFileSync(join(dir, 'oracle.json'), 'utf8')) as { cases: { text: string; input_ids: number[] }[] };
  const tok = loadClipTokenizer(dir);
  assert.ok(oracle.cases.length >= 9);
  for (const c of oracle.cases) assert.deepEqual(tok.encode(c.text), c.input_ids, `case ${JSON.stringify(c.text)}`);
});

test('a folder with only tokenizer.json (either merges format) gives the oracle ids', { skip: needsFixture() }, () => {
  const dir = join(referenceSd, 'tokenizer');
  const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8'));
  const lines = readFileSync(join(dir, 'merges.txt'), 'utf8').split('\n').slice(1).filter(Boolean);
  const oracle = JSON.parse(readFileSync(join(dir, 'oracle.json'), 'utf8')) as { cases: { text: string; input_ids: number[] }[] };
  for (const merges of [lines, lines.map((l) => l.split(' '))]) {
    const tmp = mkdtempSync(join(tmpdir(), 'tok-'));
    writeFileSync(join(tmp, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab, merges } }));
    const tok = loadClipTokenizer(tmp);
    for (const c of oracle.cases) assert.deepEqual(tok.encode(c.text), c.input_ids, `case ${JSON.stringify(c.text)}`);
    rmSync(tmp, { recursive: true });
  }
});

const toy = () => {
  const vocab: Record<string, number> = { 'a</w>': 0, 'b</w>': 1, a: 2, b: 3, 'ab</w>': 4, '<|startoftext|>': 5, '<|endoftext|>': 6 };
  return new ClipTokenizer({ vocab, merges: [['a', 'b</w>']], maxLength: 6 });
};

test('long prompts are cut to maxLength-2 tokens and keep bos/eos', () => {
  assert.deepEqual(toy().encode('a a a a a a a a'), [5, 0, 0, 0, 0, 6]);
  assert.deepEqual(toy().encode('ab b'), [5, 4, 1, 6, 6, 6]);
});

test('text cleanup collapses whitespace, lowercases and unescapes html', () => {
  assert.equal(cleanText('  A\t\nB &amp;amp; C  '), 'a b & c');
});

test('a token missing from the vocabulary is reported', () => {
  assert.throws(() => toy().encode('c'), /not in the tokenizer vocabulary/);
});

test('the pad token of tokenizer_config.json fills the prompt after its end mark (SD 2 pads with "!", not the end token)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tok-pad-'));
  try {
    const vocab = { 'a</w>': 0, 'b</w>': 1, a: 2, b: 3, 'ab</w>': 4, '<|startoftext|>': 5, '<|endoftext|>': 6, '!': 7 };
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\na b</w>\n');
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 6, pad_token: '!' }));
    assert.deepEqual(loadClipTokenizer(dir).encode('ab'), [5, 4, 6, 7, 7, 7]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
