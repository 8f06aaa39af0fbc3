/** The studio's Experiments tree as plain data; the TreeDataProvider only maps nodes to TreeItems. */
import type { ExperimentEntry } from '../experiment/store';
import type { TrainingAlgorithm } from '../../protocol';
import { checkpointName } from '../ddpo/layout';
import { modelLabel } from './presets';
import { describeBackboneChoice, describeBackboneRef, rewardBackboneOf, sameBackbone } from '../reward/backboneRef';
import type { RunState } from './runState';
import { formatWinRate, type ExperimentSummary } from './summary';
import { latestResult, ratedThrough } from './compare';

/** Node kinds; the provider turns them (and `status`) into context values for the menus. */
export type StudioNodeKind = 'experiment' | 'error' | 'model' | 'prompts' | 'prompt' | 'ratings' | 'reward' | 'run' | 'checkpoints' | 'checkpoint' | 'comparisons' | 'comparison';

/** One row of the tree. */
export interface StudioNode {
  id: string;
  kind: StudioNodeKind;
  label: string;
  description?: string;
  tooltip?: string;
  dir: string;
  experiment: string;
  /** Run state for status icons. */
  status?: 'running' | 'failed' | 'done' | 'stopped' | 'interrupted' | 'idle';
  epoch?: number;
  /** The run a run, checkpoints or checkpoint row belongs to. */
  algorithm?: TrainingAlgorithm;
  compareId?: string;
  children: StudioNode[];
}

const pct = (x: number) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a');

/** Builds the tree from the experiment list and each experiment's summary. */
export function buildStudioTree(entries: readonly ExperimentEntry[], summaryOf: (e: Extract<ExperimentEntry, { status: 'ok' }>) => ExperimentSummary): StudioNode[] {
  return entries.map((e) => (e.status === 'ok' ? experimentNode(e, summaryOf(e)) : { id: e.name, kind: 'error', label: e.name, description: e.reason, tooltip: `Cannot read this experiment: ${e.reason}\n${e.dir}`, dir: e.dir, experiment: e.name, children: [] }));
}

function experimentNode(e: Extract<ExperimentEntry, { status: 'ok' }>, s: ExperimentSummary): StudioNode {
  const x = e.experiment;
  const base = { dir: e.dir, experiment: e.name };
  const id = (suffix: string) => `${e.name}/${suffix}`;
  const run = s.run;
  // the experiment's row shows the DDPO run's state, unless the Diffusion-DPO run is the one under way, or the one a
  // closed window or dead worker left interrupted while DDPO's is not under way
  const dpoFirst = s.dpoRun?.state === 'running' || (s.dpoRun?.state === 'interrupted' && run.state !== 'running');
  const shown = dpoFirst && s.dpoRun ? s.dpoRun : run;
  const comparisons: StudioNode[] = s.comparisons.map((c) => ({
    ...base, id: id(`compare/${c.id}`), kind: 'comparison', label: c.label, compareId: c.id, ...(c.b.kind === 'checkpoint' ? { epoch: c.b.epoch, algorithm: c.b.algorithm } : {}),
    ...(ratedThrough(c) ? {
      description: `win rate ${formatWinRate(c.winRate)}`,
      tooltip: `${c.wins} wins, ${c.losses} losses, ${c.ties} ties of ${c.label.replace(' vs ', ' against ')} (a tie counts half; ${c.skips} skips not counted)`,
    } : {
      description: `${c.rated}/${c.total} rated`,
      tooltip: `The win rate shows once every pair is rated: until then it stays hidden, so the comparison stays blind.`,
    }),
    children: [],
  }));
  const latest = latestResult(s.comparisons);
  const prompts: StudioNode[] = x.prompts.map((p, i) => ({ ...base, id: id(`prompts/${i}`), kind: 'prompt', label: p, children: [] }));
  return {
    ...base,
    id: e.name,
    kind: 'experiment',
    label: e.name,
    description: shown.state === 'idle' ? modelLabel(x.baseModel) : `${modelLabel(x.baseModel)} · ${shown.state}`,
    tooltip: `${e.dir}\nBase model: ${modelLabel(x.baseModel)}${x.baseModel.path ? ` (${x.baseModel.path})` : ''}\nCreated: ${x.createdAt}`,
    status: shown.state,
    children: [
      { ...base, id: id('base'), kind: 'model', label: 'Base model', description: modelLabel(x.baseModel), tooltip: x.baseModel.path ?? x.baseModel.id, children: [] },
      { ...base, id: id('prompts'), kind: 'prompts', label: 'Prompts', description: prompts.length ? String(prompts.length) : 'none yet', children: prompts },
      { ...base, id: id('ratings'), kind: 'ratings', label: 'Ratings', description: `${s.ratings} rated` + (s.consistency !== null ? ` · consistency ${pct(s.consistency)}` : ''), children: [] },
      rewardNode(e, s, id('reward')),
      runNode(base, id, 'ddpo', run),
      ...(s.dpoRun ? [runNode(base, id, 'diffusion-dpo', s.dpoRun)] : []),
      { ...base, id: id('compare'), kind: 'comparisons', label: 'Blind comparisons', description: latest ? `latest: ${formatWinRate(latest.winRate)}` : s.comparisons.length ? 'being rated' : 'none yet', children: comparisons },
    ],
  };
}

// The reward model's row names its backbone: the one it was trained on, or before training the one it will train on.
function rewardNode(e: Extract<ExperimentEntry, { status: 'ok' }>, s: ExperimentSummary, nodeId: string): StudioNode {
  const chosen = rewardBackboneOf(e.experiment);
  const next = describeBackboneChoice(chosen);
  const trained = s.reward?.backbone;
  const unchanged = !s.reward?.backboneRef || sameBackbone(s.reward.backboneRef, chosen, e.dir);
  // how accuracy grew with ratings: warm against cold when the head started from a prior, else cold alone
  const growth = s.reward?.warmStart ?? s.reward?.curve;
  const tooltip = (trained ? `Trained on ${trained}${unchanged ? '' : `\nThe next training uses ${next}`}` : `Trains on ${next}`) + (growth ? `\n${growth}` : '');
  return {
    dir: e.dir, experiment: e.name, id: nodeId, kind: 'reward', label: 'Reward model', tooltip, children: [],
    description: s.reward ? `accuracy ${pct(s.reward.accuracy)} on ${s.reward.heldOut} held-out · ${trained ?? describeBackboneRef(chosen)}` : `not trained · ${describeBackboneRef(chosen)}`,
  };
}

/** The runs a closed window or a dead worker left interrupted (the rows to offer Resume for), in tree order. */
export function interruptedRuns(nodes: readonly StudioNode[]): { experiment: string; dir: string; algorithm: TrainingAlgorithm; label: string }[] {
  return nodes.flatMap((n) => n.children).filter((c) => c.kind === 'run' && c.status === 'interrupted' && c.algorithm)
    .map((c) => ({ experiment: c.experiment, dir: c.dir, algorithm: c.algorithm!, label: c.label }));
}

// A run's row (DDPO's "Fine-tuning", Diffusion-DPO's "Fine-tuning (Diffusion-DPO)") with its checkpoints.
function runNode(base: Pick<StudioNode, 'dir' | 'experiment'>, id: (suffix: string) => string, algorithm: TrainingAlgorithm, run: RunState): StudioNode {
  const dpo = algorithm === 'diffusion-dpo';
  const folder = dpo ? 'dpo/' : '';
  const last = run.dpoPoints?.at(-1);
  const figure = dpo
    ? last ? `, held-out accuracy ${last.heldOutAcc === null ? 'n/a' : `${Math.round(last.heldOutAcc * 100)}%`}` : ''
    : run.points.length ? `, reward ${run.points[run.points.length - 1].rewardMean.toFixed(3)}` : '';
  // epochs finished, not the one under way (the status bar names that): a run in its first epoch has finished none
  const description = run.state === 'idle' ? 'not started' : `${run.state} · ${run.lastEpoch + 1}/${run.numEpochs} epochs${figure}`;
  const checkpoints: StudioNode[] = run.checkpoints.map((ep) => ({ ...base, id: id(`${folder}checkpoints/${ep}`), kind: 'checkpoint', label: `epoch ${ep + 1}`, description: checkpointName(ep), epoch: ep, algorithm, children: [] }));
  return {
    ...base, id: id(`${folder}run`), kind: 'run', label: dpo ? 'Fine-tuning (Diffusion-DPO)' : 'Fine-tuning', description, tooltip: run.message, status: run.state, algorithm,
    children: [{ ...base, id: id(`${folder}checkpoints`), kind: 'checkpoints', label: 'Checkpoints', description: checkpoints.length ? String(checkpoints.length) : 'none yet', algorithm, children: checkpoints }],
  };
}
