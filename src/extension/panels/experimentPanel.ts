/** The experiment panel: a webview showing one experiment's settings and prompts; prompts can be added. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Experiment } from '../../core/experiment/schema';
import { EXPERIMENT_FILE } from '../../core/experiment/schema';
import { assertNever, panelReceiver, type ExperimentToHost, type ExperimentView, type HostToExperiment } from '../../protocol';
import type { Services } from '../services';
import { requireStore } from '../workspaceStore';
import { webviewHtml, webviewOptions } from './webviewHtml';

const panels = new Map<string, vscode.WebviewPanel>();

/** Opens (or reveals) the panel of experiment `name`; asks which one when no name is given. */
export async function openExperimentPanel(services: Services, name?: string): Promise<void> {
  const store = requireStore();
  if (!store) return;
  if (!name) {
    const names = (await store.list()).filter((e) => e.status === 'ok').map((e) => e.name);
    if (names.length === 0) return void vscode.window.showInformationMessage('No experiments yet: run "DDPO Studio: New Experiment" first.');
    name = await vscode.window.showQuickPick(names, { title: 'Open DDPO Studio experiment' });
    if (!name) return;
  }
  const existing = panels.get(name);
  if (existing) return existing.reveal();
  const expName = name;
  const { extensionUri } = services.context;
  const panel = vscode.window.createWebviewPanel('ddpoStudio.experiment', `Experiment: ${expName}`, vscode.ViewColumn.Active, webviewOptions(extensionUri));
  panels.set(expName, panel);
  panel.webview.html = webviewHtml(panel.webview, extensionUri, 'experiment', expName);
  const post = (msg: HostToExperiment) => void panel.webview.postMessage(msg);
  const sendState = async () => {
    try {
      post({ type: 'experiment', experiment: toView(await store.read(expName), store.dirOf(expName)) });
    } catch (e) {
      post({ type: 'error', message: (e as Error).message });
    }
  };
  const handle = async (msg: ExperimentToHost) => {
    switch (msg.type) {
      case 'ready':
        return sendState();
      case 'openExperimentFile':
        return void vscode.window.showTextDocument(vscode.Uri.file(path.join(store.dirOf(expName), EXPERIMENT_FILE)));
      case 'addPrompt': {
        const prompt = msg.prompt.trim();
        if (!prompt) return;
        const exp = await store.read(expName);
        exp.prompts.push(prompt);
        // the Experiments tree redraws from the watch on experiment.json
        await store.save(exp);
        return sendState();
      }
      default:
        assertNever(msg);
    }
  };
  panel.webview.onDidReceiveMessage(panelReceiver('experiment',
    (msg) => void handle(msg).catch((e: Error) => post({ type: 'error', message: e.message })),
    (why) => services.output.appendLine(`[host] rejected an experiment panel message: ${why}`)));
  panel.onDidDispose(() => panels.delete(expName));
}

function toView(exp: Experiment, dir: string): ExperimentView {
  return { name: exp.name, dir, baseModel: exp.baseModel.path ?? exp.baseModel.id, prompts: exp.prompts, createdAt: exp.createdAt, settings: exp.settings };
}
