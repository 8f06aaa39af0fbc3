/** The reward a DDPO run optimises, chosen by the `reward` setting. */
import { pathToFileURL } from 'node:url';
import { jpegCompressibility, jpegIncompressibility } from '../reward/jpegReward';
import type { OpenBackboneOptions } from '../reward/openBackbone';
import { openExperimentBackbone } from '../reward/experiment';
import { isPriorName, type PriorName } from '../reward/priorNames';
import { openPrior } from '../reward/priors';
import { openRewardScorer, priorScorer } from '../reward/scorer';
import type { ImageRGB } from '../image/rgb';
import { SCRIPT_PREFIX, resolveRewardScript, type RewardScript, type RewardScriptGate } from './rewardScript';
import type { RewardFn } from './types';

/**
 * Builds the reward: a built-in JPEG reward, the experiment's learned reward model (the head its `reward/card.json`
 * names, scoring each image with its prompt on the backbone it was trained on, opened with `open`: the policy's
 * providers), or a user's module `script:<path>` inside the experiment, run only once `approveScript` lets it, whose
 * default export (or `reward` export) is `(images, prompts, metadata) => number[] | Promise<number[]>`. A reward with
 * `release` holds sessions its caller frees when the run ends.
 */
export async function makeReward(spec: string, experimentDir: string, approveScript?: RewardScriptGate, open: OpenBackboneOptions = {}): Promise<RewardFn> {
  if (spec === 'jpeg_incompressibility') return async (images) => images.map(jpegIncompressibility);
  if (spec === 'jpeg_compressibility') return async (images) => images.map(jpegCompressibility);
  if (spec === 'learned') {
    const scorer = await openRewardScorer(experimentDir, open);
    open.onLog?.(`learned reward: ${scorer.head.kind} head on ${scorer.backbone.label ?? scorer.backbone.id}${scorer.backbone.provider ? ` (on ${scorer.backbone.provider})` : ''}${scorer.layout === 'image' ? '' : ', reading each image\'s prompt'}`);
    return Object.assign((images: ImageRGB[], prompts: string[]) => scorer.score(images, prompts), { release: () => scorer.release() });
  }
  if (isPriorName(spec)) return priorReward(spec, experimentDir, open);
  if (spec.startsWith(SCRIPT_PREFIX)) return scriptReward(resolveRewardScript(spec, experimentDir), approveScript);
  throw new Error(`Unknown reward "${spec}"; use jpeg_incompressibility, jpeg_compressibility, learned, aesthetic, clip_score, shape_taste or script:<path>`);
}

// A built-in prior on the experiment's reward backbone: no ratings needed.
async function priorReward(name: PriorName, experimentDir: string, open: OpenBackboneOptions): Promise<RewardFn> {
  const backbone = await openExperimentBackbone(experimentDir, open);
  let scorer;
  try {
    scorer = priorScorer(await openPrior(name, backbone, { ...open, experimentDir }), backbone);
  } catch (e) {
    await backbone.dispose?.();
    throw e;
  }
  open.onLog?.(`${name} reward on ${backbone.label ?? backbone.id}${backbone.provider ? ` (on ${backbone.provider})` : ''}`);
  return Object.assign((images: ImageRGB[], prompts: string[]) => scorer.score(images, prompts), { release: () => scorer.release() });
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
