/** `ddpo experiments list|new`: the experiments of a workspace folder. */
import { ExperimentStore } from '../core/experiment/store';
import { parseFlags, type CliCommand, type FlagTable } from './command';

const LIST_FLAGS: FlagTable = { workspace: 'text', json: 'boolean' };
const NEW_FLAGS: FlagTable = { workspace: 'text', 'base-model': 'text', prompt: 'text' };

function storeFrom(flags: Record<string, string | true>): ExperimentStore {
  const ws = flags.workspace;
  if (ws === true) throw new Error('--workspace needs a folder, e.g. --workspace ~/my-project');
  return new ExperimentStore(ws ?? process.cwd());
}

/** Handler for `ddpo experiments list`. */
export const experimentsListCommand: CliCommand = {
  path: ['experiments', 'list'],
  summary: 'List the experiments in <workspace>/.ddpo',
  flags: LIST_FLAGS,
  usage: 'ddpo experiments list [--workspace DIR] [--json]\n\nLists experiment folders under DIR/.ddpo (default: the current folder). Unreadable ones are shown with the reason.',
  async run(argv, io) {
    const { flags } = parseFlags(argv, LIST_FLAGS);
    const store = storeFrom(flags);
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
};

/** Handler for `ddpo experiments new`. */
export const experimentsNewCommand: CliCommand = {
  path: ['experiments', 'new'],
  summary: 'Create a new experiment folder',
  flags: NEW_FLAGS,
  args: 1,
  usage: 'ddpo experiments new NAME [--workspace DIR] [--base-model ID] [--prompt TEXT]\n\nCreates DIR/.ddpo/NAME/experiment.json (default DIR: the current folder).',
  async run(argv, io) {
    const { flags, positionals } = parseFlags(argv, NEW_FLAGS);
    if (positionals.length !== 1) {
      io.err('Give exactly one experiment name: ddpo experiments new NAME');
      return 2;
    }
    const store = storeFrom(flags);
    const baseModel = typeof flags['base-model'] === 'string' ? { id: flags['base-model'] } : undefined;
    const prompts = typeof flags.prompt === 'string' ? [flags.prompt] : undefined;
    await store.create(positionals[0], { baseModel, prompts });
    io.out(`Created ${store.dirOf(positionals[0])}`);
    return 0;
  },
};
