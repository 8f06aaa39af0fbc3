/** The tiny model's tokenizer files: CLIP's exact format, every caption word a single token, reproducible from the word list. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipTokenizer, loadClipTokenizer } from '../../../src/core/diffusion/tokenizer';
import { buildVocab, byteUnicodeChars, writeTokenizerFolder } from '../../../src/core/tiny/vocab';
import { mulberry32 } from '../../../src/core/random';
import { caption, captionWords, randomScene } from '../../../src/core/tiny/scenes';
import { needsTinyModel } from '../fixtures';

const SHIPPED = join(__dirname, '../../../media/tiny-model/tokenizer');

test('the standard CLIP BPE turns every caption word into one token', () => {
  const v = buildVocab(captionWords());
  const tok = new ClipTokenizer({ vocab: v.vocab, merges: v.merges });
  for (const w of captionWords()) assert.deepEqual(tok.tokenize(w), [`${w}</w>`], w);
  const r = mulberry32(3);
  for (let i = 0; i < 50; i++) {
    const c = caption(randomScene(r));
    assert.equal(tok.tokenize(c).length, c.split(' ').length, c);
  }
});

test('files are in CLIP format and load through the product tokenizer loader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiny-vocab-'));
  try {
    writeTokenizerFolder(dir, buildVocab(captionWords()));
    const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
    const merges = readFileSync(join(dir, 'merges.txt'), 'utf8').split('\n');
    assert.match(merges[0], /^#version/);
    const chars = byteUnicodeChars();
    assert.equal(vocab[chars[0]], 0);
    assert.equal(vocab['!'], 0);
    assert.equal(vocab[chars[255] + '</w>'], 511);
    assert.equal(Object.keys(vocab).length, Math.max(...Object.values(vocab)) + 1, 'ids are dense');
    const tok = loadClipTokenizer(dir);
    assert.equal(tok.bosId, vocab['<|startoftext|>']);
    assert.equal(tok.eosId, vocab['<|endoftext|>']);
    const ids = tok.encode('a big red circle on a blue background');
    assert.equal(ids.length, 77);
    assert.deepEqual(ids.slice(0, 10), [tok.bosId, ...['a', 'big', 'red', 'circle', 'on', 'a', 'blue', 'background'].map((w) => vocab[`${w}</w>`]), tok.eosId]);
    // words outside the vocabulary fall back to bytes instead of failing
    assert.ok(tok.encode('a dog on the moon!').length === 77);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the shipped tokenizer is exactly what the generator builds', { skip: needsTinyModel() }, () => {
  const shipped = readFileSync(join(SHIPPED, 'vocab.json'), 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'tiny-vocab-'));
  try {
    writeTokenizerFolder(dir, buildVocab(captionWords()));
    assert.equal(readFileSync(join(dir, 'vocab.json'), 'utf8'), shipped);
    assert.equal(readFileSync(join(dir, 'merges.txt'), 'utf8'), readFileSync(join(SHIPPED, 'merges.txt'), 'utf8'));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
