/**
 * The rated pairs Diffusion-DPO trains on, read from the experiment's ratings.jsonl, with the latents of both images.
 *
 * Rules: a skip is no judgement and a tie no preference, so neither becomes a training pair (the loss needs a winner);
 * every other rating is one pair, winner first, so a side-swapped repeat counts again and an inconsistent one pulls
 * both ways, as the rater did. Pairs are held out by pair id with the reward model's split (isHeldOut, 20%), so
 * DDPO's reward model and Diffusion-DPO learn from, and are scored on, the same ratings.
 *
 * Latents: a model with a VAE encoder encodes the rated PNGs (what the rater saw); one without takes the latents
 * stored beside each generated pair (pairLatents.ts). A pair without either is left out, and counted.
 */
import * as fs from 'node:fs';
import { StoredLatents, type ImageLatent } from '../experiment/pairLatents';
import { resolveInside } from '../fsutil';
import { decodePng } from '../image/png';
import type { ImageRGB } from '../image/rgb';
import { HELD_OUT_SHARE, isHeldOut } from '../reward/experiment';
import { readRatings } from '../reward/store';
import type { PreferencePolicy } from './types';

/** Share of pairs held out: the reward model's, so both are scored on the same pairs. */
export const DPO_HELD_OUT_SHARE = HELD_OUT_SHARE;

/** One rated pair ready to train on: clean latents `[C, h, w]` of the preferred and the rejected image. */
export interface PreferencePair {
  pairId: string;
  prompt: string;
  winner: Float32Array;
  loser: Float32Array;
}

/** What was left out of the ratings, and why. */
export interface PairCounts {
  ratings: number;
  ties: number;
  skips: number;
  /** Ratings whose images have no latent (no encoder, nothing stored), are unreadable, or have another latent size. */
  withoutLatents: number;
}

/** The training and held-out pairs, where their latents came from, and what was left out. */
export interface PreferenceData {
  train: PreferencePair[];
  heldOut: PreferencePair[];
  latents: 'vae_encoder' | 'stored';
  counts: PairCounts;
  /** One line per kind of image left out, for the run's log. */
  problems: string[];
}

/** Reads and sorts the experiment's ratings into pairs; images are encoded (or their latents read) once each. */
export async function readPreferencePairs(experimentDir: string, policy: PreferencePolicy): Promise<PreferenceData> {
  const ratings = readRatings(experimentDir).ratings;
  const decided = ratings.filter((r) => r.choice === 'left' || r.choice === 'right');
  const source = policy.model.hasEncoder ? new EncodedLatents(experimentDir, policy) : new StoredLatents(experimentDir);
  const expected = policy.model.latent.join('x');
  const problems = new Map<string, number>();
  const data: PreferenceData = {
    train: [], heldOut: [], latents: policy.model.hasEncoder ? 'vae_encoder' : 'stored', problems: [],
    counts: { ratings: ratings.length, ties: ratings.filter((r) => r.choice === 'tie').length, skips: ratings.filter((r) => r.choice === 'skip').length, withoutLatents: 0 },
  };
  if (source instanceof EncodedLatents) await source.encodeAll(decided.flatMap((r) => [r.left, r.right]));
  for (const r of decided) {
    const [win, lose] = r.choice === 'left' ? [r.left, r.right] : [r.right, r.left];
    const latents = [win, lose].map((img) => checkedLatent(source.of(img), expected));
    const why = latents.find((l): l is string => typeof l === 'string');
    if (why !== undefined) {
      data.counts.withoutLatents++;
      problems.set(why, (problems.get(why) ?? 0) + 1);
      continue;
    }
    const pair: PreferencePair = { pairId: r.pairId, prompt: r.prompt, winner: latents[0] as Float32Array, loser: latents[1] as Float32Array };
    (isHeldOut(r.pairId, DPO_HELD_OUT_SHARE) ? data.heldOut : data.train).push(pair);
  }
  data.problems = [...problems].map(([why, n]) => `${n} rating${n === 1 ? '' : 's'} left out: ${why}`);
  return data;
}

/** One line saying what the run trains on. */
export function describePairs(d: PreferenceData): string {
  const c = d.counts;
  return `Diffusion-DPO on ${d.train.length} rated pairs (${d.heldOut.length} held out) of ${c.ratings} ratings: ${c.ties} ties and ${c.skips} skips carry no preference, ` +
    `${c.withoutLatents} without latents; latents from ${d.latents === 'vae_encoder' ? "the model's VAE encoder" : 'the pairs\' stored latents'}`;
}

function checkedLatent(l: ImageLatent | string, expected: string): Float32Array | string {
  if (typeof l === 'string') return l;
  const got = l.shape.join('x');
  return got === expected ? l.data : `latents of ${got}, but the model trains on ${expected} (latent_size); pairs generated at another image size`;
}

// Latents of rated images from the model's VAE encoder, each image encoded once.
class EncodedLatents {
  private readonly latents = new Map<string, ImageLatent | string>();

  constructor(private readonly experimentDir: string, private readonly policy: PreferencePolicy) {}

  async encodeAll(images: string[]): Promise<void> {
    const todo = [...new Set(images)].filter((p) => !this.latents.has(p));
    const readable: { path: string; image: ImageRGB }[] = [];
    for (const p of todo) {
      const image = readRgb(resolveInside(this.experimentDir, p));
      if (typeof image === 'string') this.latents.set(p, image);
      else readable.push({ path: p, image });
    }
    const encoded = await this.policy.encodeImages(readable.map((r) => r.image));
    const size = this.policy.model.latent.reduce((a, b) => a * b, 1);
    readable.forEach((r, i) => this.latents.set(r.path, encoded[i].length === size
      ? { shape: this.policy.model.latent, data: encoded[i] }
      : `the VAE encoder gives ${encoded[i].length} latent values for a ${r.image.width}x${r.image.height} image, the model trains on ${this.policy.model.latent.join('x')} (latent_size); images of another size`));
  }

  of(image: string): ImageLatent | string {
    return this.latents.get(image) ?? `${image} was not encoded`;
  }
}

function readRgb(file: string): ImageRGB | string {
  try {
    const png = decodePng(fs.readFileSync(file));
    const data = new Uint8Array(png.width * png.height * 3);
    for (let i = 0; i < png.width * png.height; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = png.data[i * png.channels + (png.channels < 3 ? 0 : c)];
    return { width: png.width, height: png.height, data };
  } catch (e) {
    return `an image is unreadable (${(e as Error).message.split('\n')[0]})`;
  }
}
