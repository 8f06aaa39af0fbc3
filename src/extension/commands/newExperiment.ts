/** "DDPO Studio: New Experiment": asks for a name and creates `.ddpo/<name>/experiment.json`. */
import * as vscode from 'vscode';
import { experimentNameProblem } from '../../core/experiment/store';
import { requireStore, type Services } from '../services';

/** Creates an experiment; `name` may be passed by other commands or tests to skip the prompt. */
export async function newExperiment(services: Services, name?: string): Promise<string | undefined> {
  const store = requireStore();
  if (!store) return undefined;
  const existing = new Set((await store.list()).map((e) => e.name));
  const chosen =
    name ??
    (await vscode.window.showInputBox({
      title: 'New DDPO Studio experiment',
      prompt: `Name of the experiment folder under ${store.root}`,
      placeHolder: 'e.g. watercolor-cats',
      validateInput: (v) => experimentNameProblem(v.trim()) ?? (existing.has(v.trim()) ? `"${v.trim()}" already exists` : null),
    }));
  if (chosen === undefined) return undefined;
  try {
    await store.create(chosen.trim());
  } catch (e) {
    void vscode.window.showErrorMessage(`Could not create the experiment: ${(e as Error).message}`);
    return undefined;
  }
  services.output.appendLine(`[host] created experiment ${chosen.trim()} in ${store.root}`);
  await services.tree.refresh();
  return chosen.trim();
}
