/** Thin TreeDataProvider over the studio tree model; reloads from disk on refresh. */
import * as vscode from 'vscode';
import type { TrainingAlgorithm } from '../../protocol';
import { readSummary } from '../../core/studio/summary';
import { buildStudioTree, type StudioNode } from '../../core/studio/treeModel';
import { currentStore } from '../workspaceStore';

/** Command run when an experiment row is clicked. */
export const OPEN_EXPERIMENT_COMMAND = 'ddpoStudio.openExperiment';

const KIND_ICONS: Record<StudioNode['kind'], string> = {
  experiment: 'beaker', error: 'error', model: 'package', prompts: 'list-unordered', prompt: 'comment', ratings: 'thumbsup',
  reward: 'star-empty', run: 'pulse', checkpoints: 'history', checkpoint: 'save', comparisons: 'split-horizontal', comparison: 'eye',
};

const STATUS_ICONS: Record<string, [string, string?]> = {
  running: ['sync~spin', 'charts.blue'],
  failed: ['error', 'errorForeground'],
  interrupted: ['warning', 'editorWarning.foreground'],
  stopped: ['debug-pause'],
  done: ['pass', 'charts.green'],
};

/** Provides the Experiments view. */
export class ExperimentsTreeProvider implements vscode.TreeDataProvider<StudioNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<StudioNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots: StudioNode[] = [];
  private loading: Promise<void> | undefined;

  constructor(private readonly output: vscode.OutputChannel, private readonly isRunning: (dir: string, algorithm: TrainingAlgorithm) => boolean) {}

  /** Re-reads `.ddpo/` and redraws the view. */
  refresh(): Promise<void> {
    // Serialized, so an older slow read can never overwrite a newer one.
    const next = (this.loading ?? Promise.resolve()).then(() => this.load());
    this.loading = next;
    return next;
  }

  /** Current top-level nodes (after the last refresh). */
  get nodes(): readonly StudioNode[] {
    return this.roots;
  }

  async getChildren(node?: StudioNode): Promise<StudioNode[]> {
    if (node) return node.children;
    await (this.loading ?? this.refresh());
    return this.roots;
  }

  getTreeItem(node: StudioNode): vscode.TreeItem {
    const collapsed = node.children.length === 0 ? vscode.TreeItemCollapsibleState.None : vscode.TreeItemCollapsibleState.Collapsed;
    const item = new vscode.TreeItem(node.label, collapsed);
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip ?? (node.description ? `${node.label}: ${node.description}` : undefined);
    // Menus match on kind and run state, e.g. "run.running" or "experiment.interrupted".
    item.contextValue = node.status ? `${node.kind}.${node.status}` : node.kind;
    item.resourceUri = node.kind === 'experiment' || node.kind === 'error' ? vscode.Uri.file(node.dir) : undefined;
    const status = (node.kind === 'run' || node.kind === 'experiment') && node.status ? STATUS_ICONS[node.status] : undefined;
    const [icon, color] = status ?? [KIND_ICONS[node.kind], node.kind === 'error' ? 'errorForeground' : undefined];
    item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
    item.accessibilityInformation = { label: [node.label, node.description, node.status && node.status !== 'idle' ? `run ${node.status}` : ''].filter(Boolean).join(', ') };
    if (node.kind === 'experiment') item.command = { command: OPEN_EXPERIMENT_COMMAND, title: 'Open Experiment', arguments: [node.experiment] };
    if (node.kind === 'ratings') item.command = { command: 'ddpoStudio.rate', title: 'Rate Pairs', arguments: [node] };
    if (node.kind === 'run') item.command = { command: 'ddpoStudio.openDashboard', title: 'Open Training Dashboard', arguments: [node] };
    if (node.kind === 'comparison') item.command = { command: 'ddpoStudio.openComparison', title: 'Open Comparison', arguments: [node] };
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }

  private async load(): Promise<void> {
    const store = currentStore();
    let next: StudioNode[];
    try {
      next = store ? buildStudioTree(await store.list(), (e) => readSummary(e.dir, (a) => this.isRunning(e.dir, a))) : [];
    } catch (e) {
      // Listing itself failed (e.g. .ddpo is a file): show why instead of an empty or broken view.
      const reason = (e as Error).message;
      this.output.appendLine(`[host] cannot list experiments: ${reason}`);
      next = [{ id: '!error', kind: 'error', label: 'Cannot read .ddpo', description: reason, tooltip: reason, dir: store?.root ?? '', experiment: '', children: [] }];
    }
    this.apply(next);
  }

  // Redraws only what changed. A whole-tree refresh makes VS Code forget every row for a moment, and a context
  // menu opened in that moment would run its command without the row it was opened on.
  private apply(next: StudioNode[]): void {
    const old = this.roots;
    const sameRoots = old.length === next.length && old.every((n, i) => n.id === next[i].id);
    if (!sameRoots) {
      this.roots = next;
      return this.changed.fire(undefined);
    }
    next.forEach((n, i) => {
      if (JSON.stringify(n) === JSON.stringify(old[i])) return;
      // VS Code knows rows by object: update the old object in place and redraw it with its subtree.
      for (const k of Object.keys(old[i])) delete (old[i] as unknown as Record<string, unknown>)[k];
      Object.assign(old[i], n);
      this.changed.fire(old[i]);
    });
  }
}
