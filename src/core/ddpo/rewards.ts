/** The reward a DDPO run optimises, chosen by the `reward` setting. */
import { pathToFileURL } from 'node:url';
import { jpegCompressibility, jpegIncompressibility } from '../reward/jpegReward';
import { openBackbone } from '../reward/experiment';
import { loadRewardModel } from '../reward/model';
import { SCRIPT_PREFIX, resolveRewardScript, type RewardScript, type RewardScriptGate } from './rewardScript';
import type { RewardFn } from './types';

/**
 * Builds the reward: a built-in JPEG reward, the experiment's learned reward model (the head its
 * `reward/card.json` names, on its backbone), or a user's module `script:<path>` inside the experiment, run only
 * once `approveScript` lets it, whose default export (or `reward` export) is
 * `(images, prompts, metadata) => number[] | Promise<number[]>`.
 */
export async function makeReward(spec: string, experimentDir: string, approveScript?: RewardScriptGate): Promise<RewardFn> {
  if (spec === 'jpeg_incompressibility') return async (images) => images.map(jpegIncompressibility);
  if (spec === 'jpeg_compressibility') return async (images) => images.map(jpegCompressibility);
  if (spec === 'learned') {
    const { head, backbone: id, file } = loadRewardModel(experimentDir);
    const backbone = await openBackbone(id === 'unknown' ? undefined : id);
    if (backbone.dim !== head.inputDim) throw new Error(`${file} expects ${head.inputDim} features, backbone ${backbone.id} gives ${backbone.dim}; retrain with \`ddpo reward train\``);
    return async (images) => (await backbone.embed(images)).map((x) => head.score(x));
  }
  if (spec.startsWith(SCRIPT_PREFIX)) return scriptReward(resolveRewardScript(spec, experimentDir), approveScript);
  throw new Error(`Unknown reward "${spec}"; use jpeg_incompressibility, jpeg_compressibility, learned or script:<path>`);
}

async function scriptReward(script: RewardScript, approve: RewardScriptGate | undefined): Promise<RewardFn> {
  const { file, sha256 } = script;
  if (!approve) throw new Error(`Reward script ${file} was not confirmed; run it from \`ddpo train\` or confirm it in the studio`);
  await approve(script);
  let mod: Record<string, unknown>;
  try {
    // the hash in the URL gives each content its own module: an edited script is loaded again, not from the cache
    mod = (await import(`${pathToFileURL(file).href}?sha256=${sha256}`)) as Record<string, unknown>;
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
