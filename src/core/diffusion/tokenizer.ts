import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** CLIP's pre-tokenization pattern (openai/CLIP simple_tokenizer), case-insensitive after lowercasing. */
const CLIP_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2/CLIP byte-to-unicode table: printable bytes map to themselves, the rest to U+0100 upwards. */
function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keep(b) ? b : 256 + extra++);
  return table;
}
const BYTE_CHARS = bytesToUnicode();
const CHAR_BYTES = new Map(BYTE_CHARS.map((c, b) => [c, b]));

// BPE tokens back to text (the inverse of the byte-to-unicode table), words separated by spaces.
function detokenize(tokens: string[]): string {
  return tokens.map((t) => Buffer.from(Array.from(t.replace('</w>', ' '), (c) => (c === ' ' ? 0x20 : CHAR_BYTES.get(c) ?? 0x3f))).toString('utf8')).join('').trim();
}

const HTML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
function htmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return HTML_ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** Text cleanup as CLIP does it (ftfy omitted): html unescape twice, collapse whitespace, strip, lowercase. */
export function cleanText(text: string): string {
  return htmlUnescape(htmlUnescape(text)).replace(/\s+/g, ' ').trim().toLowerCase();
}

/** Options for building a tokenizer from raw vocabulary and merges. */
export interface ClipTokenizerSpec {
  vocab: Record<string, number>;
  /** Merge pairs in rank order, e.g. [['p','h'], ['ph','o']]. */
  merges: [string, string][];
  maxLength?: number;
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
}

/** CLIP byte-level BPE tokenizer producing `[bos] + bpe(text)[:max-2] + [eos]`, padded to `maxLength`. */
export class ClipTokenizer {
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly vocab: Map<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();

  constructor(spec: ClipTokenizerSpec) {
    this.vocab = new Map(Object.entries(spec.vocab));
    spec.merges.forEach(([a, b], i) => this.ranks.set(a + ' ' + b, i));
    this.maxLength = spec.maxLength ?? 77;
    this.bosId = this.idOf(spec.bosToken ?? '<|startoftext|>');
    this.eosId = this.idOf(spec.eosToken ?? '<|endoftext|>');
    this.padId = this.idOf(spec.padToken ?? spec.eosToken ?? '<|endoftext|>');
  }

  /** One more than the largest token id: the embedding rows a text model needs for every id this tokenizer gives. */
  get vocabSize(): number {
    let max = -1;
    for (const id of this.vocab.values()) if (id > max) max = id;
    return max + 1;
  }

  private idOf(token: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new Error(`Tokenizer vocabulary has no entry for special token '${token}'; check tokenizer/vocab.json and tokenizer_config.json`);
    return id;
  }

  /** BPE tokens (strings, `</w>` marking word ends) of cleaned text, without bos/eos. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const m of cleanText(text).matchAll(CLIP_PATTERN)) {
      const word = Array.from(Buffer.from(m[0], 'utf8'), (b) => BYTE_CHARS[b]).join('');
      out.push(...this.bpe(word));
    }
    return out;
  }

  /** Token ids, `[bos] + ids[:maxLength-2] + [eos]` padded with pad to maxLength. */
  encode(text: string): number[] {
    return this.encodeCounted(text).ids;
  }

  /** As {@link encode}, also saying how many tokens did not fit and the text they start at (empty when all fit). */
  encodeCounted(text: string): { ids: number[]; dropped: number; droppedFrom: string } {
    const tokens = this.tokenize(text);
    const ids = tokens.map((t) => {
      const id = this.vocab.get(t);
      if (id === undefined) throw new Error(`Token '${t}' is not in the tokenizer vocabulary; vocab.json and merges.txt do not belong together`);
      return id;
    });
    const room = this.maxLength - 2;
    const out = [this.bosId, ...ids.slice(0, room), this.eosId];
    while (out.length < this.maxLength) out.push(this.padId);
    const rest = tokens.slice(room);
    return { ids: out, dropped: rest.length, droppedFrom: detokenize(rest.slice(0, 8)) };
  }

  // Greedy BPE: repeatedly merge the adjacent pair with the lowest merge rank (CLIP's algorithm).
  private bpe(word: string): string[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const chars = Array.from(word);
    let parts = [...chars.slice(0, -1), chars[chars.length - 1] + '</w>'];
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(parts[i] + ' ' + parts[i + 1]);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0) break;
      const [a, b] = [parts[best], parts[best + 1]];
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1 && parts[i] === a && parts[i + 1] === b) { merged.push(a + b); i++; }
        else merged.push(parts[i]);
      }
      parts = merged;
    }
    if (this.cache.size < 10000) this.cache.set(word, parts);
    return parts;
  }
}

function parseMerges(text: string): [string, string][] {
  return text.split('\n').filter((l, i) => !(i === 0 && l.startsWith('#version')) && l.trim() !== '')
    .map((l) => l.split(' ') as [string, string]);
}

/** Loads a CLIP tokenizer from a `tokenizer/` folder (vocab.json + merges.txt, or tokenizer.json). */
export function loadClipTokenizer(dir: string): ClipTokenizer {
  const cfgPath = join(dir, 'tokenizer_config.json');
  const cfg = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, 'utf8')) : {};
  const tokenName = (v: unknown) => (typeof v === 'string' ? v : v && typeof v === 'object' && 'content' in v ? String((v as { content: unknown }).content) : undefined);
  const special = { maxLength: typeof cfg.model_max_length === 'number' && cfg.model_max_length < 100000 ? cfg.model_max_length : 77,
    bosToken: tokenName(cfg.bos_token), eosToken: tokenName(cfg.eos_token), padToken: tokenName(cfg.pad_token) };
  const vocabPath = join(dir, 'vocab.json');
  const mergesPath = join(dir, 'merges.txt');
  if (existsSync(vocabPath) && existsSync(mergesPath)) {
    return new ClipTokenizer({ vocab: JSON.parse(readFileSync(vocabPath, 'utf8')), merges: parseMerges(readFileSync(mergesPath, 'utf8')), ...special });
  }
  const fastPath = join(dir, 'tokenizer.json');
  if (existsSync(fastPath)) {
    const model = JSON.parse(readFileSync(fastPath, 'utf8')).model;
    if (!model?.vocab || !model?.merges) throw new Error(`${fastPath} has no BPE model.vocab/model.merges; re-download the tokenizer`);
    const merges = (model.merges as (string | [string, string])[]).map((m) => (typeof m === 'string' ? m.split(' ') as [string, string] : m));
    return new ClipTokenizer({ vocab: model.vocab, merges, ...special });
  }
  throw new Error(`No tokenizer in ${dir}: expected vocab.json + merges.txt or tokenizer.json; re-download the model's tokenizer/ folder`);
}
