/** `ddpo experiments list|new`: the experiments of a workspace folder. */
import { ExperimentStore } from '../core/experiment/store';
import { BUILTIN_BACKBONE_ID, DEFAULT_BASE_MODEL, type RewardBackboneRef } from '../core/experiment/schema';
import { backboneRefFromSpec, describeBackboneRef, isBuiltinBackbone, localBackboneDir, rewardBackboneOf } from '../core/reward/backboneRef';
import { fittingPriors, isPriorName, localBackboneTraits, PRIOR_NAMES, type PriorName } from '../core/reward/priorNames';
import { defineCommand, UsageError } from './command';

/** Handler for `ddpo experiments list`. */
export const experimentsListCommand = defineCommand({
  path: ['experiments', 'list'],
  summary: 'List the experiments in <workspace>/.ddpo',
  flags: { workspace: 'text', json: 'boolean' },
  usage: 'ddpo experiments list [--workspace DIR] [--json]\n\nLists experiment folders under DIR/.ddpo (default: the current folder). Unreadable ones are shown with the reason.',
  async run({ flags }, io) {
    const store = new ExperimentStore(flags.workspace ?? process.cwd());
    const entries = await store.list();
    if (flags.json) {
      io.out(JSON.stringify(entries.map((e) => (e.status === 'ok' ? { name: e.name, status: e.status, experiment: e.experiment } : e)), null, 2));
      return 0;
    }
    if (entries.length === 0) {
      io.out(`No experiments in ${store.root}. Create one with: ddpo experiments new NAME${flags.workspace ? ` --workspace ${flags.workspace}` : ''}`);
      return 0;
    }
    io.out(`Experiments in ${store.root}:`);
    for (const e of entries) {
      if (e.status === 'ok') io.out(`  ${e.name}  base model ${e.experiment.baseModel.id}, ${e.experiment.prompts.length} prompt(s), created ${e.experiment.createdAt}`);
      else io.out(`  ${e.name}  ERROR: ${e.reason}`);
    }
    return entries.some((e) => e.status === 'error') ? 1 : 0;
  },
});

// A prior that cannot open on the backbone would fail only at the first training, after the ratings: refuse it now,
// where the backbone's files are here to read (a Hub backbone not downloaded yet is checked when it trains).
function checkPriorFits(prior: PriorName, ref: RewardBackboneRef): void {
  if (!isBuiltinBackbone(ref.id) && localBackboneDir(ref) === undefined) return;
  const fits = fittingPriors(localBackboneTraits(ref));
  if (!fits.includes(prior)) {
    throw new UsageError(`--reward-prior ${prior} does not fit the reward backbone ${describeBackboneRef(ref)}: ${fits.length ? `it takes ${fits.join(' or ')}` : 'it takes none'}; or leave --reward-prior out to start cold`);
  }
}

/** Handler for `ddpo experiments new`. */
export const experimentsNewCommand = defineCommand({
  path: ['experiments', 'new'],
  summary: 'Create a new experiment folder',
  flags: { workspace: 'text', 'base-model': 'text', prompt: 'repeatable', 'reward-backbone': 'text', 'reward-prior': 'text' },
  args: ['NAME'],
  usage: 'ddpo experiments new NAME [--workspace DIR] [--base-model ID] [--prompt TEXT ...] [--reward-backbone builtin|REPO|DIR]\n' +
    `  [--reward-prior ${PRIOR_NAMES.join('|')}]\n\n` +
    'Creates DIR/.ddpo/NAME/experiment.json (default DIR: the current folder). --reward-backbone is what the reward model\n' +
    'sees images through (default: the built-in features for the embedded model, Xenova/clip-vit-large-patch14 for others);\n' +
    '--reward-prior the built-in reward its head starts from, which the ratings then correct (default: none, it starts cold).',
  async run({ flags, positionals: [name] }, io) {
    const store = new ExperimentStore(flags.workspace ?? process.cwd());
    const baseModel = flags['base-model'] === undefined ? undefined : { id: flags['base-model'] };
    const prompts = flags.prompt;
    const spec = flags['reward-backbone'];
    const rewardBackbone = spec === undefined ? undefined : isBuiltinBackbone(spec) ? { id: BUILTIN_BACKBONE_ID } : backboneRefFromSpec(spec);
    const rewardPrior = flags['reward-prior'];
    if (rewardPrior !== undefined && !isPriorName(rewardPrior)) throw new UsageError(`--reward-prior: unknown prior "${rewardPrior}"; use one of ${PRIOR_NAMES.join(', ')}`);
    if (rewardPrior !== undefined) checkPriorFits(rewardPrior, rewardBackboneOf({ baseModel: baseModel ?? DEFAULT_BASE_MODEL, rewardBackbone }));
    await store.create(name, { baseModel, prompts, rewardBackbone, rewardPrior });
    io.out(`Created ${store.dirOf(name)}`);
    return 0;
  },
});
