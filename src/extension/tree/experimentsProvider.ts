/** Thin TreeDataProvider over the core tree model; reloads from disk on refresh. */
import * as vscode from 'vscode';
import { buildExperimentTree, type ExperimentTreeNode } from '../../core/experiment/treeModel';
import { currentStore } from '../services';

/** Command run when an experiment row is clicked. */
export const OPEN_EXPERIMENT_COMMAND = 'ddpoStudio.openExperiment';

/** Provides the Experiments view. */
export class ExperimentsTreeProvider implements vscode.TreeDataProvider<ExperimentTreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ExperimentTreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots: ExperimentTreeNode[] = [];
  private loading: Promise<void> | undefined;

  constructor(private readonly output: vscode.OutputChannel) {}

  /** Re-reads `.ddpo/` and redraws the view. */
  refresh(): Promise<void> {
    // Serialized, so an older slow read can never overwrite a newer one.
    const next = (this.loading ?? Promise.resolve()).then(() => this.load());
    this.loading = next;
    return next;
  }

  /** Current top-level nodes (after the last refresh). */
  get nodes(): readonly ExperimentTreeNode[] {
    return this.roots;
  }

  async getChildren(node?: ExperimentTreeNode): Promise<ExperimentTreeNode[]> {
    if (node) return node.children;
    await (this.loading ?? this.refresh());
    return this.roots;
  }

  getTreeItem(node: ExperimentTreeNode): vscode.TreeItem {
    const collapsed = node.children.length === 0 ? vscode.TreeItemCollapsibleState.None : vscode.TreeItemCollapsibleState.Collapsed;
    const item = new vscode.TreeItem(node.label, collapsed);
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.contextValue = node.kind;
    item.resourceUri = node.kind === 'experiment' || node.kind === 'error' ? vscode.Uri.file(node.dir) : undefined;
    switch (node.kind) {
      case 'experiment':
        item.iconPath = new vscode.ThemeIcon('beaker');
        item.command = { command: OPEN_EXPERIMENT_COMMAND, title: 'Open Experiment', arguments: [node.experiment] };
        break;
      case 'error':
        item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground'));
        break;
      case 'prompt':
        item.iconPath = new vscode.ThemeIcon('comment');
        break;
      case 'detail':
        item.iconPath = new vscode.ThemeIcon(node.label === 'Prompts' ? 'list-unordered' : node.label === 'Settings' ? 'settings-gear' : 'package');
        break;
    }
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }

  private async load(): Promise<void> {
    const store = currentStore();
    try {
      this.roots = store ? buildExperimentTree(await store.list()) : [];
    } catch (e) {
      // Listing itself failed (e.g. .ddpo is a file): show why instead of an empty or broken view.
      const reason = (e as Error).message;
      this.output.appendLine(`[host] cannot list experiments: ${reason}`);
      this.roots = [{ id: '!error', kind: 'error', label: 'Cannot read .ddpo', description: reason, tooltip: reason, dir: store?.root ?? '', experiment: '', children: [] }];
    }
    this.changed.fire(undefined);
  }
}
