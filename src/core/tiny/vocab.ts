/** A small CLIP-format BPE vocabulary (vocab.json + merges.txt) in which every caption word is one token. */
import { mkdirSync } from 'node:fs';
import { atomicWriteFileSync } from '../fsutil';
import { join } from 'node:path';

/** GPT-2/CLIP byte-to-unicode table (printable bytes map to themselves, the rest from U+0100 up), in byte order. */
export function byteUnicodeChars(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const kept: number[] = [], rest: number[] = [];
  for (let b = 0; b < 256; b++) (keep(b) ? kept : rest).push(b);
  // CLIP lists printable bytes first, then the remapped ones, in vocab order
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keep(b) ? b : 256 + extra++);
  return [...kept, ...rest].map((b) => table[b]);
}

/** vocab (token -> id) and merges in rank order. */
export interface BpeVocab {
  vocab: Record<string, number>;
  merges: [string, string][];
}

/**
 * Learns merges the way BPE training does (most frequent adjacent pair first, ties by first appearance) until every
 * word is a single token, so CLIP's greedy lowest-rank BPE reproduces each word whole. Ids follow CLIP's layout:
 * 256 byte chars, the same with `</w>`, one token per merge, then `<|startoftext|>`, `<|endoftext|>`.
 */
export function buildVocab(words: string[]): BpeVocab {
  const chars = byteUnicodeChars();
  const tokens: string[] = [...chars, ...chars.map((c) => c + '</w>')];
  const seen = new Set(tokens);
  for (const w of words) if (!/^[a-z]+$/.test(w)) throw new Error(`buildVocab: word "${w}" must be lowercase ASCII letters`);
  let segs = [...new Set(words)].map((w) => { const c = Array.from(w); return [...c.slice(0, -1), c[c.length - 1] + '</w>']; });
  const merges: [string, string][] = [];
  for (;;) {
    const counts = new Map<string, number>();
    for (const s of segs) for (let i = 0; i < s.length - 1; i++) { const k = s[i] + ' ' + s[i + 1]; counts.set(k, (counts.get(k) ?? 0) + 1); }
    if (counts.size === 0) break;
    let best = '', bestN = 0;
    for (const [k, n] of counts) if (n > bestN) { best = k; bestN = n; }
    const [a, b] = best.split(' ');
    merges.push([a, b]);
    if (!seen.has(a + b)) { seen.add(a + b); tokens.push(a + b); }
    segs = segs.map((s) => {
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i < s.length - 1 && s[i] === a && s[i + 1] === b) { out.push(a + b); i++; } else out.push(s[i]);
      }
      return out;
    });
  }
  tokens.push('<|startoftext|>', '<|endoftext|>');
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => { vocab[t] = i; });
  return { vocab, merges };
}

/** Writes vocab.json, merges.txt (with CLIP's `#version` header), tokenizer_config.json and special_tokens_map.json. */
export function writeTokenizerFolder(dir: string, v: BpeVocab, maxLength = 77): void {
  mkdirSync(dir, { recursive: true });
  atomicWriteFileSync(join(dir, 'vocab.json'), JSON.stringify(v.vocab));
  atomicWriteFileSync(join(dir, 'merges.txt'), '#version: 0.2\n' + v.merges.map(([a, b]) => `${a} ${b}`).join('\n') + '\n');
  const special = { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>' };
  atomicWriteFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({
    tokenizer_class: 'CLIPTokenizer', model_max_length: maxLength, do_lower_case: true, add_prefix_space: false, errors: 'replace', ...special,
  }, null, 2) + '\n');
  atomicWriteFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify(special, null, 2) + '\n');
}

/**
 * Writes `tokenizer.json` in the Hugging Face tokenizers format that CLIP repositories publish (what transformers.js
 * reads): CLIP's normalizer and pre-tokenizer, BPE with `</w>` word ends, `<|startoftext|> … <|endoftext|>` around.
 */
export function writeTokenizerJson(dir: string, v: BpeVocab): void {
  const bos = '<|startoftext|>', eos = '<|endoftext|>';
  const added = (content: string) => ({ id: v.vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true });
  const json = {
    version: '1.0', truncation: null, padding: null, added_tokens: [added(bos), added(eos)],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: [eos, v.vocab[eos]], cls: [bos, v.vocab[bos]], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: eos, continuing_subword_prefix: '', end_of_word_suffix: '</w>', fuse_unk: false, byte_fallback: false,
      vocab: v.vocab, merges: v.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  mkdirSync(dir, { recursive: true });
  atomicWriteFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
}
