import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { decodePng } from '../image/png';
import { statsFeatures, STATS_FEATURE_DIM } from './features';
import type { ImageRGB } from '../image/rgb';
import { atomicWriteFileSync } from '../fsutil';

/** Turns images into fixed-length feature vectors for a reward head. */
export interface Backbone {
  /** Identifies the backbone and its weights (embedding caches and saved heads are keyed by it). */
  readonly id: string;
  readonly dim: number;
  embed(images: ImageRGB[]): Promise<Float32Array[]>;
  dispose?(): Promise<void>;
}

/**
 * The built-in hand-made feature backbone (see statsFeatures for why it exists). v2 measures the foreground as the
 * largest region differing from the border's median colour: the border's mean (v1) ranks shapes' sizes the wrong way
 * round far more often, and counts noise scattered over the picture as a big, spread-out shape, which DDPO against a
 * v1-based reward learns to produce.
 */
export const statsBackbone: Backbone = {
  id: 'builtin:stats-v2',
  dim: STATS_FEATURE_DIM,
  embed: async (images) => images.map((img) => statsFeatures(img, 2)),
};

/** The v1 features (border mean, every differing pixel), kept so reward models trained on them score images as they were trained to. */
export const statsBackboneV1: Backbone = {
  id: 'builtin:stats-v1',
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

/** Per-file embeddings cached by content hash, stored as JSON next to the reward model. */
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
  /** Embeddings of image files, computing (in batches) only those not cached. */
  async embedFiles(backbone: Backbone, files: string[], batch = 16): Promise<Float32Array[]> {
    const hashes = files.map((f) => createHash('sha256').update(fs.readFileSync(f)).digest('hex'));
    const missing = [...new Set(files.filter((_, i) => !this.map.has(hashes[i])))];
    for (let i = 0; i < missing.length; i += batch) {
      const chunk = missing.slice(i, i + batch);
      const embs = await backbone.embed(chunk.map(loadImageRGB));
      chunk.forEach((f, k) => this.map.set(hashes[files.indexOf(f)], Array.from(embs[k])));
      this.dirty = true;
    }
    return hashes.map((h) => Float32Array.from(this.map.get(h)!));
  }
  /** Write the cache if anything was added. */
  save(): void {
    if (!this.file || !this.dirty) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    atomicWriteFileSync(this.file, JSON.stringify(Object.fromEntries(this.map)));
    this.dirty = false;
  }
}
