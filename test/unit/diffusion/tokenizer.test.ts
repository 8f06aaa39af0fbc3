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
