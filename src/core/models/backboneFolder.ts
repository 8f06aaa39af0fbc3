/**
 * Reward backbone folders: CLIP-family image (and text) encoders in the layouts the Hugging Face Hub publishes them in.
 *
 * | path | what |
 * |---|---|
 * | `onnx/vision_model.onnx` | image tower: `pixel_values [batch,3,S,S]` -> `image_embeds` (transformers.js / optimum) |
 * | `onnx/text_model.onnx` | text tower: `input_ids [batch,sequence]` (+ `attention_mask`) -> `text_embeds` |
 * | `onnx/model.onnx` | both towers in one graph: `input_ids`, `pixel_values`, `attention_mask` -> `image_embeds`, `text_embeds`, ... |
 * | `model.onnx` | a plain folder: an image encoder alone (or both towers, told apart by its inputs) |
 * | `tokenizer.json` or `vocab.json` + `merges.txt` | the text tower's CLIP BPE tokenizer (`tokenizer_config.json` beside it) |
 * | `preprocessor_config.json`, `config.json` | image size and normalisation; the towers' configs (`text_config.vocab_size`) |
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { onnxProblem } from './modelFolder';

/** Where each tower lives in a backbone folder. */
const BACKBONE_LAYOUT = {
  vision: 'onnx/vision_model.onnx',
  text: 'onnx/text_model.onnx',
  combined: 'onnx/model.onnx',
  plain: 'model.onnx',
} as const;

const CONFIG_FILES = ['config.json', 'preprocessor_config.json'];
const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

/** The files of an ONNX model: the model and its external data (`model.onnx_data`, `model.onnx.data`, split parts). */
function withExternalData(file: string, paths: readonly string[]): string[] {
  return paths.filter((p) => p === file || (p.startsWith(file) && /^(_data|\.data)/.test(p.slice(file.length))));
}

/**
 * The files of a backbone repo the loader reads, out of its listing: configs, tokenizer, and the float32 towers with
 * their external data. Separate towers are taken over the combined model (never both); quantized and float16 variants
 * (`vision_model_quantized.onnx`, ...) are left on the Hub.
 */
export function selectBackboneFiles(paths: readonly string[]): string[] {
  const has = (p: string) => paths.includes(p);
  const towers = has(BACKBONE_LAYOUT.vision) ? [BACKBONE_LAYOUT.vision, ...(has(BACKBONE_LAYOUT.text) ? [BACKBONE_LAYOUT.text] : [])]
    : has(BACKBONE_LAYOUT.combined) ? [BACKBONE_LAYOUT.combined]
    : has(BACKBONE_LAYOUT.plain) ? [BACKBONE_LAYOUT.plain]
    : [];
  return [...CONFIG_FILES.filter(has), ...TOKENIZER_FILES.filter(has), ...towers.flatMap((t) => withExternalData(t, paths))];
}

/** What a backbone repo must hold, as the Hub downloader checks it: undefined when `wanted` has an image encoder. */
export function backboneRepoProblem(wanted: readonly string[]): string | undefined {
  if ([BACKBONE_LAYOUT.vision, BACKBONE_LAYOUT.combined, BACKBONE_LAYOUT.plain].some((f) => wanted.includes(f))) return undefined;
  return `it has no ${BACKBONE_LAYOUT.vision}, ${BACKBONE_LAYOUT.combined} or ${BACKBONE_LAYOUT.plain} (an ONNX image encoder in the transformers.js / optimum layout)`;
}

/** The ONNX files and tokenizer of a backbone folder, as found on disk. */
export interface BackboneFiles {
  dir: string;
  /** The file that embeds images (a combined model also needs token ids). */
  image: string;
  /** A separate text tower, when the folder has one. */
  text?: string;
  /** The folder holding `tokenizer.json` or `vocab.json` + `merges.txt`, when there is one. */
  tokenizerDir?: string;
  /** The plain layout (`model.onnx` at the top, or a `.onnx` file given directly): ids stay what they were for it. */
  plain: boolean;
}

/** Whether `dir` holds a CLIP BPE tokenizer in either file format. */
function hasTokenizer(dir: string): boolean {
  return existsSync(join(dir, 'tokenizer.json')) || (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt')));
}

/** How to lay out a backbone folder, for error messages. */
const BACKBONE_FOLDER_HINT = `a folder with ${BACKBONE_LAYOUT.vision} (and ${BACKBONE_LAYOUT.text} with tokenizer.json for prompts), ` +
  `a combined ${BACKBONE_LAYOUT.combined}, or an image encoder ${BACKBONE_LAYOUT.plain}, as CLIP exports on the Hugging Face Hub are laid out (e.g. Xenova/clip-vit-large-patch14)`;

/** Finds the towers of a backbone folder (or takes a `.onnx` file as a plain image encoder); throws naming what is missing or broken. */
export function inspectBackboneFolder(pathOrDir: string): BackboneFiles {
  const at = resolve(pathOrDir);
  if (!existsSync(at)) throw new Error(`reward backbone ${at} does not exist; give ${BACKBONE_FOLDER_HINT}`);
  if (!statSync(at).isDirectory()) {
    if (!at.endsWith('.onnx')) throw new Error(`reward backbone ${at} is neither a folder nor an .onnx file; give ${BACKBONE_FOLDER_HINT}`);
    return checked({ dir: dirname(at), image: at, plain: true });
  }
  const partial = partlyDownloaded(at);
  if (partial) throw new Error(`reward backbone ${at}: ${partial.slice(0, -'.part'.length)} is only partly downloaded (${basename(partial)}); run the download again to resume it`);
  const file = (rel: string) => (existsSync(join(at, rel)) ? join(at, rel) : undefined);
  const tokenizerDir = hasTokenizer(at) ? at : undefined;
  const vision = file(BACKBONE_LAYOUT.vision);
  if (vision) return checked({ dir: at, image: vision, text: file(BACKBONE_LAYOUT.text), tokenizerDir, plain: false });
  const combined = file(BACKBONE_LAYOUT.combined);
  if (combined) return checked({ dir: at, image: combined, tokenizerDir, plain: false });
  const plain = file(BACKBONE_LAYOUT.plain);
  if (plain) return checked({ dir: at, image: plain, tokenizerDir, plain: true });
  throw new Error(`reward backbone ${at} has no image encoder; give ${BACKBONE_FOLDER_HINT}`);
}

// A file the Hub downloader left cut off (`<file>.part`), at the top or in onnx/: a tower or tokenizer that is missing
// for that reason must not pass for one the repo lacks (an image-only reward, or none).
function partlyDownloaded(dir: string): string | undefined {
  for (const sub of ['', 'onnx']) {
    const at = join(dir, sub);
    if (!existsSync(at) || !statSync(at).isDirectory()) continue;
    const part = readdirSync(at).find((n) => n.endsWith('.part'));
    if (part) return join(sub, part).replace(/\\/g, '/');
  }
  return undefined;
}

function checked(f: BackboneFiles): BackboneFiles {
  for (const file of [f.image, f.text]) {
    const problem = file && onnxProblem(file);
    if (problem) throw new Error(`reward backbone ${f.dir}: ${file} ${problem}`);
  }
  return f;
}

/**
 * Whether a backbone folder embeds prompts (a text tower or a combined model, with a tokenizer beside it, as the loader
 * needs; a plain `model.onnx` is taken for an image encoder) and how wide its image embedding is by its config.json (`projection_dim`; undefined when
 * no config says).
 */
export function backboneFolderTraits(files: BackboneFiles): { textTower: boolean; embeddingWidth?: number } {
  const combined = !files.plain && files.image === join(files.dir, BACKBONE_LAYOUT.combined);
  const textTower = (!!files.text || combined) && !!files.tokenizerDir;
  const config = join(files.dir, 'config.json');
  let width: unknown;
  try {
    const c = existsSync(config) ? JSON.parse(readFileSync(config, 'utf8')) : undefined;
    width = c?.projection_dim ?? c?.vision_config?.projection_dim;
  } catch {
    width = undefined; // a config that does not parse says nothing about the width; loading the backbone names the problem
  }
  return { textTower, ...(typeof width === 'number' ? { embeddingWidth: width } : {}) };
}
