/** The Experiments tree as plain data; the VS Code TreeDataProvider only maps these nodes to TreeItems. */
import type { ExperimentEntry } from './store';

/** One row of the Experiments tree. */
export interface ExperimentTreeNode {
  /** Stable across refreshes, so expansion state survives. */
  id: string;
  kind: 'experiment' | 'error' | 'detail' | 'prompt';
  label: string;
  description?: string;
  tooltip?: string;
  /** Experiment folder this row belongs to. */
  dir: string;
  /** Experiment name this row belongs to. */
  experiment: string;
  children: ExperimentTreeNode[];
}

/** Builds the tree: one node per experiment folder, error nodes for unreadable ones, details beneath. */
export function buildExperimentTree(entries: readonly ExperimentEntry[]): ExperimentTreeNode[] {
  return entries.map((e) => (e.status === 'ok' ? experimentNode(e) : errorNode(e)));
}

function experimentNode(e: Extract<ExperimentEntry, { status: 'ok' }>): ExperimentTreeNode {
  const x = e.experiment;
  const base = { dir: e.dir, experiment: e.name };
  const prompts: ExperimentTreeNode[] = x.prompts.map((p, i) => ({ ...base, id: `${e.name}/prompts/${i}`, kind: 'prompt', label: p, children: [] }));
  const s = x.settings;
  return {
    ...base,
    id: e.name,
    kind: 'experiment',
    label: e.name,
    description: x.baseModel.id,
    tooltip: `${e.dir}\nBase model: ${x.baseModel.id}${x.baseModel.path ? ` (${x.baseModel.path})` : ''}\nCreated: ${x.createdAt}`,
    children: [
      { ...base, id: `${e.name}/base`, kind: 'detail', label: 'Base model', description: x.baseModel.path ?? x.baseModel.id, children: [] },
      {
        ...base,
        id: `${e.name}/prompts`,
        kind: 'detail',
        label: 'Prompts',
        description: prompts.length === 0 ? 'none yet' : String(prompts.length),
        children: prompts,
      },
      { ...base, id: `${e.name}/settings`, kind: 'detail', label: 'Settings', description: `${s.steps} steps, guidance ${s.guidanceScale}, ${s.imageSize}px, seed ${s.seed}`, children: [] },
    ],
  };
}

function errorNode(e: Extract<ExperimentEntry, { status: 'error' }>): ExperimentTreeNode {
  return {
    id: e.name,
    kind: 'error',
    label: e.name,
    description: e.reason,
    tooltip: `Cannot read this experiment: ${e.reason}\n${e.dir}`,
    dir: e.dir,
    experiment: e.name,
    children: [],
  };
}
