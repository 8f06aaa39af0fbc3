/** The constructed text encoder: each word's features name the word, and the word before it (so roles are bound). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipTokenizer } from '../../../src/core/diffusion/tokenizer';
import { createSession, runModel } from '../../../src/core/runtime/ortRun';
import { buildTinyTextEncoder, TINY_TEXT_DIM } from '../../../src/core/tiny/textEncoder';
import { buildVocab } from '../../../src/core/tiny/vocab';
import { captionWords } from '../../../src/core/tiny/scenes';

const cos = (a: Float32Array, b: Float32Array) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] ** 2; nb += b[i] ** 2; }
  return d / Math.sqrt(na * nb);
};

test('swapping shape and background colours changes the shape word and the background word, not the others', async () => {
  const v = buildVocab(captionWords());
  const tok = new ClipTokenizer({ vocab: v.vocab, merges: v.merges, maxLength: 16 });
  const model = buildTinyTextEncoder(Object.keys(v.vocab).length, tok.eosId, 0);
  const session = await createSession(model, { threads: 1 });
  const prompts = ['a big red circle on a blue background', 'a big blue circle on a red background'];
  const out = await runModel(session, model, { input_ids: { dims: [2, 16], data: prompts.flatMap((p) => tok.encode(p)) } }, ['last_hidden_state']);
  await session.release();
  const h = out.get('last_hidden_state')!;
  assert.deepEqual(h.dims, [2, 16, TINY_TEXT_DIM]);
  const at = (b: number, t: number) => h.data.subarray((b * 16 + t) * TINY_TEXT_DIM, (b * 16 + t + 1) * TINY_TEXT_DIM);
  // positions: 0 bos, 1 a, 2 big, 3 colour, 4 circle, 5 on, 6 a, 7 colour, 8 background, 9 eos
  for (const t of [0, 1, 2, 5, 6, 9, 12]) assert.ok(cos(at(0, t), at(1, t)) > 0.999, `position ${t} should not change`);
  for (const t of [3, 7]) assert.ok(cos(at(0, t), at(1, t)) < 0.8, `the colour word at ${t} should change`);
  // "circle" after "red" differs from "circle" after "blue": the shape word knows its colour
  assert.ok(cos(at(0, 4), at(1, 4)) < 0.8, `circle: ${cos(at(0, 4), at(1, 4))}`);
  assert.ok(cos(at(0, 8), at(1, 8)) < 0.8, `background: ${cos(at(0, 8), at(1, 8))}`);
});
