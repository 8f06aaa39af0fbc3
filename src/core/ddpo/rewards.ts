/** The reward a DDPO run optimises, chosen by the `reward` setting. */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { jpegCompressibility, jpegIncompressibility } from '../reward/jpegReward';
import { openBackbone } from '../reward/experiment';
import { loadRewardHead, rewardPaths } from '../reward/model';
import type { RewardFn } from './types';

/**
 * Builds the reward: a built-in JPEG reward, the experiment's learned reward model
 * (`reward/head.safetensors` on its backbone), or a user's module `script:<path>` whose default
 * export (or `reward` export) is `(images, prompts, metadata) => number[] | Promise<number[]>`.
 */
export async function makeReward(spec: string, experimentDir: string): Promise<RewardFn> {
  if (spec === 'jpeg_incompressibility') return async (images) => images.map(jpegIncompressibility);
  if (spec === 'jpeg_compressibility') return async (images) => images.map(jpegCompressibility);
  if (spec === 'learned') {
    const file = rewardPaths(experimentDir).head;
    const { head, backbone: id } = loadRewardHead(file);
    const backbone = await openBackbone(id === 'unknown' ? undefined : id);
    if (backbone.dim !== head.inputDim) throw new Error(`${file} expects ${head.inputDim} features, backbone ${backbone.id} gives ${backbone.dim}; retrain with \`ddpo reward train\``);
    return async (images) => (await backbone.embed(images)).map((x) => head.score(x));
  }
  if (spec.startsWith('script:')) {
    const file = path.resolve(experimentDir, spec.slice(7));
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`Cannot load reward script ${file}: ${(e as Error).message}`);
    }
    const fn = (typeof mod.default === 'function' ? mod.default : mod.reward) as ((...a: unknown[]) => unknown) | undefined;
    if (typeof fn !== 'function') throw new Error(`Reward script ${file} must export a function (default export or "reward") taking (images, prompts, metadata)`);
    return async (images, prompts, metadata) => {
      const r = await fn(images, prompts, metadata);
      if (!Array.isArray(r) || r.length !== images.length || !r.every((x) => typeof x === 'number')) {
        throw new Error(`Reward script ${file} returned ${JSON.stringify(r)?.slice(0, 80)}; it must return ${images.length} numbers, one per image`);
      }
      return r as number[];
    };
  }
  throw new Error(`Unknown reward "${spec}"; use jpeg_incompressibility, jpeg_compressibility, learned or script:<path>`);
}
