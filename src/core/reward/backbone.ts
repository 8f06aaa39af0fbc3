import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { decodePng } from '../image/png';
import { statsFeatures, STATS_FEATURE_DIM } from './features';
import type { ImageRGB } from '../image/rgb';
import { atomicWriteFileSync } from '../fsutil';
import type { RewardBackboneRef } from '../experiment/schema';

/** Turns images (and, with a text tower, prompts) into fixed-length embeddings for a reward head. */
export interface Backbone {
  /** Identifies the backbone and its weights (embedding caches and saved heads are keyed by it). */
  readonly id: string;
  readonly dim: number;
  /** What to call it in the studio and the CLI, e.g. "Xenova/clip-vit-large-patch14 (image + text)". */
  readonly label?: string;
  /** Where it was opened from, so a head trained on it can open it again (absent for the built-in features). */
  readonly source?: RewardBackboneRef;
  /** The execution provider its sessions run on (absent for the built-in features, which run in plain TypeScript). */
  readonly provider?: string;
  embed(images: ImageRGB[]): Promise<Float32Array[]>;
  /** The text tower, when the backbone has one embedding prompts into the images' space (`dim` wide). */
  readonly text?: TextTower;
  dispose?(): Promise<void>;
}

/** Prompts -> embeddings in the image embeddings' space. */
export interface TextTower {
  embed(prompts: string[]): Promise<Float32Array[]>;
}

/**
 * The built-in hand-made feature backbone (see statsFeatures for why it exists). v2 measures the foreground as the
 * largest region differing from the border's median colour: the border's mean (v1) ranks shapes' sizes the wrong way
 * round far more often, and counts noise scattered over the picture as a big, spread-out shape, which DDPO against a
 * v1-based reward learns to produce.
 */
export const statsBackbone: Backbone = {
  id: 'builtin:stats-v2',
  label: 'built-in shape features',
  dim: STATS_FEATURE_DIM,
  embed: async (images) => images.map((img) => statsFeatures(img, 2)),
};

/** The v1 features (border mean, every differing pixel), kept so reward models trained on them score images as they were trained to. */
export const statsBackboneV1: Backbone = {
  id: 'builtin:stats-v1',
  label: 'built-in shape features (v1)',
  dim: STATS_FEATURE_DIM,
  embed: async (images) => images.map((img) => statsFeatures(img, 1)),
};

/** Decode an image file (PNG) to RGB; alpha is dropped, gray is expanded. */
export function loadImageRGB(file: string): ImageRGB {
  let png;
  try {
    png = decodePng(fs.readFileSync(file));
  } catch (e) {
    throw new Error(`could not read image ${file}: ${(e as Error).message}`);
  }
  const n = png.width * png.height, c = png.channels;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) data[i * 3 + k] = png.data[i * c + (c >= 3 ? k : 0)];
  return { width: png.width, height: png.height, data };
}

/**
 * Embeddings cached by content: image files by their sha256, prompts by the sha256 of their text (keys `prompt:…`),
 * stored as JSON next to the reward model (or only in memory when `file` is null).
 */
export class EmbeddingCache {
  private map = new Map<string, number[]>();
  private dirty = false;
  constructor(readonly file: string | null) {
    if (file && fs.existsSync(file)) {
      try {
        this.map = new Map(Object.entries(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number[]>));
      } catch {
        this.map.clear(); // a damaged cache is only a cost, never an error: embeddings are recomputed
      }
    }
  }
  /** Cache file for a backbone inside an experiment. */
  static forExperiment(experimentDir: string, backboneId: string): EmbeddingCache {
    const safe = backboneId.replace(/[^a-zA-Z0-9._-]/g, '_');
    return new EmbeddingCache(path.join(experimentDir, 'reward', 'embeddings', `${safe}.json`));
  }
  /** Embeddings of image files, computing (in batches) only those not cached; throws on a file it cannot use. */
  async embedFiles(backbone: Backbone, files: string[], batch = 16): Promise<Float32Array[]> {
    const out = await this.embedFilesOrReasons(backbone, files, batch);
    const bad = out.find((x): x is string => typeof x === 'string');
    if (bad !== undefined) throw new Error(bad);
    return out as Float32Array[];
  }

  /** {@link embedFiles}, but a file that is missing, unreadable or not a PNG gets the reason instead of an embedding. */
  async embedFilesOrReasons(backbone: Backbone, files: string[], batch = 16): Promise<(Float32Array | string)[]> {
    const read = files.map(hashFile);
    const uncached = new Map<string, string>();
    files.forEach((f, i) => { const h = read[i].hash; if (h && !this.map.has(h) && !uncached.has(h)) uncached.set(h, f); });
    const undecodable = new Map<string, string>();
    const todo = [...uncached];
    for (let i = 0; i < todo.length; i += batch) {
      const decoded: [string, ImageRGB][] = [];
      for (const [h, f] of todo.slice(i, i + batch)) {
        try { decoded.push([h, loadImageRGB(f)]); } catch (e) { undecodable.set(h, (e as Error).message); }
      }
      if (decoded.length === 0) continue;
      const embs = await backbone.embed(decoded.map(([, img]) => img));
      decoded.forEach(([h], k) => this.map.set(h, Array.from(embs[k])));
      this.dirty = true;
    }
    return read.map((r) => r.reason ?? undecodable.get(r.hash!) ?? Float32Array.from(this.map.get(r.hash!)!));
  }

  /** Embeddings of prompts by the backbone's text tower, computing (in one batch) only those not cached. */
  async embedPrompts(text: TextTower, prompts: string[]): Promise<Float32Array[]> {
    const keys = prompts.map((p) => `prompt:${createHash('sha256').update(p).digest('hex')}`);
    const todo = [...new Map(keys.map((k, i) => [k, prompts[i]] as const)).entries()].filter(([k]) => !this.map.has(k));
    if (todo.length) {
      const embs = await text.embed(todo.map(([, p]) => p));
      todo.forEach(([k], i) => this.map.set(k, Array.from(embs[i])));
      this.dirty = true;
    }
    return keys.map((k) => Float32Array.from(this.map.get(k)!));
  }

  /** Write the cache if anything was added. */
  save(): void {
    if (!this.file || !this.dirty) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    atomicWriteFileSync(this.file, JSON.stringify(Object.fromEntries(this.map)));
    this.dirty = false;
  }
}

function hashFile(file: string): { hash?: string; reason?: string } {
  try {
    return { hash: createHash('sha256').update(fs.readFileSync(file)).digest('hex') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { reason: code === 'ENOENT' ? `image ${file} is missing` : `could not read image ${file}: ${(e as Error).message}` };
  }
}
