/**
 * The experiment panel: a webview showing where the person is in the loop with its next step as a button, the
 * reward backbone, and the experiment's prompts (which can be added to) and settings.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Experiment } from '../../core/experiment/schema';
import { EXPERIMENT_FILE } from '../../core/experiment/schema';
import { describeBackboneChoice, rewardBackboneOf } from '../../core/reward/backboneRef';
import { loopView } from '../../core/studio/nextStep';
import { ddpoRewardOf, runToShow } from '../../core/studio/runState';
import { readSummary, summaryRun } from '../../core/studio/summary';
import { assertNever, panelReceiver, type ExperimentToHost, type ExperimentView, type HostToExperiment, type TrainingAlgorithm } from '../../protocol';
import type { Services } from '../services';
import { requireStore } from '../workspaceStore';
import { runLoopStep } from './walkthrough';
import { webviewHtml, webviewOptions } from './webviewHtml';

const panels = new Map<string, { panel: vscode.WebviewPanel; update: () => Promise<void> }>();

/** Redraws the open panel of experiment `name` (after a change on disk: ratings, the reward model, a run). */
export function refreshExperimentPanel(name: string): void {
  void panels.get(name)?.update();
}

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
  if (existing) return existing.panel.reveal();
  const expName = name;
  const { extensionUri } = services.context;
  const panel = vscode.window.createWebviewPanel('ddpoStudio.experiment', `Experiment: ${expName}`, vscode.ViewColumn.Active, webviewOptions(extensionUri));
  panel.webview.html = webviewHtml(panel.webview, extensionUri, 'experiment', expName);
  const post = (msg: HostToExperiment) => void panel.webview.postMessage(msg);
  const dir = store.dirOf(expName);
  const algorithm = () => runToShow(dir, services.runs.algorithmOf(dir));
  const sendState = async () => {
    try {
      post({ type: 'experiment', experiment: toView(await store.read(expName), dir, algorithm(), services) });
    } catch (e) {
      post({ type: 'error', message: (e as Error).message });
    }
  };
  panels.set(expName, { panel, update: sendState });
  // a run starting or ending in this window changes the next step before any file does
  const sub = services.runs.onDidChange((e) => e.experimentDir === dir && e.progress === undefined && void sendState());
  const handle = async (msg: ExperimentToHost) => {
    switch (msg.type) {
      case 'ready':
        return sendState();
      case 'openExperimentFile':
        return void vscode.window.showTextDocument(vscode.Uri.file(path.join(dir, EXPERIMENT_FILE)));
      case 'runStep':
        return runLoopStep(services, 'experiment panel', dir, msg.step, algorithm());
      case 'addPrompt': {
        const prompt = msg.prompt.trim();
        if (!prompt) return;
        // the Experiments tree redraws from the watch on experiment.json
        await store.update(expName, (exp) => ({ ...exp, prompts: [...exp.prompts, prompt] }));
        return sendState();
      }
      default:
        assertNever(msg);
    }
  };
  panel.webview.onDidReceiveMessage(panelReceiver('experiment',
    (msg) => void handle(msg).catch((e: Error) => post({ type: 'error', message: e.message })),
    (why) => services.output.appendLine(`[host] rejected an experiment panel message: ${why}`)));
  panel.onDidDispose(() => {
    sub.dispose();
    panels.delete(expName);
  });
}

function toView(exp: Experiment, dir: string, algorithm: TrainingAlgorithm, services: Services): ExperimentView {
  const summary = readSummary(dir, (a) => services.runs.isRunning(dir, a));
  const backbone = rewardBackboneOf(exp);
  return {
    name: exp.name, dir, baseModel: exp.baseModel.path ?? exp.baseModel.id, prompts: exp.prompts, createdAt: exp.createdAt, settings: exp.settings,
    rewardBackbone: describeBackboneChoice(backbone), ...(exp.rewardPrior ? { rewardPrior: exp.rewardPrior } : {}),
    algorithm, loop: loopView(summary, summaryRun(dir, summary, algorithm), { reward: ddpoRewardOf(dir), algorithm }),
  };
}
