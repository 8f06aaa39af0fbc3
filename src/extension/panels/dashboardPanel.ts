/** The training dashboard: live reward, KL and clip-fraction charts, the newest evaluation images, the win rate. */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ddpoLayout } from '../../core/ddpo/layout';
import { resolveInside } from '../../core/fsutil';
import { readRunLock } from '../../core/experiment/runLock';
import { compareResult, listComparisons } from '../../core/studio/compare';
import { ddpoRewardOf, readRunState } from '../../core/studio/runState';
import { isLoopStep, nextStep, STEP_LABELS, type LoopStep } from '../../core/studio/nextStep';
import { readSummary } from '../../core/studio/summary';
import { COMMANDS } from '../commands/ids';
import { assertNever, panelReceiver, type DashboardToHost, type DashboardView, type HostToDashboard, type LoopView } from '../../protocol';
import type { Services } from '../services';
import { openWebviewPanel, webviewHtml } from './webviewHtml';
import { rememberPanel } from './restore';

const open = new Map<string, DashboardPanel>();

/** Opens (or reveals) the dashboard of an experiment; `resume` is what its Resume button does; `restored` comes back after a reload. */
export function openDashboardPanel(services: Services, experimentDir: string, resume: () => void, restored?: vscode.WebviewPanel): void {
  const existing = open.get(experimentDir);
  if (existing) {
    restored?.dispose();
    return existing.panel.reveal();
  }
  open.set(experimentDir, new DashboardPanel(services, experimentDir, resume, () => open.delete(experimentDir), restored));
}

/** Redraws every open dashboard of `experimentDir` (after a file change on disk). */
export function refreshDashboard(experimentDir: string): void {
  open.get(experimentDir)?.update();
}

class DashboardPanel {
  readonly panel: vscode.WebviewPanel;
  private pending: NodeJS.Timeout | undefined;
  private readonly restoreKey: string;

  constructor(private readonly services: Services, private readonly dir: string, private readonly resume: () => void, onDispose: () => void, restored?: vscode.WebviewPanel) {
    const { extensionUri } = services.context;
    const name = path.basename(dir);
    this.panel = openWebviewPanel(extensionUri, 'ddpoStudio.dashboard', `Training: ${name}`, ddpoLayout(dir).evalDir, restored);
    this.restoreKey = rememberPanel(services, { kind: 'dashboard', experimentDir: dir });
    this.panel.webview.html = webviewHtml(this.panel.webview, extensionUri, 'dashboard', `Training: ${name}`);
    const sub = services.runs.onDidChange((e) => e.experimentDir === dir && this.schedule());
    this.panel.webview.onDidReceiveMessage(panelReceiver('dashboard', (msg) => this.receive(msg), (why) => services.output.appendLine(`[host] rejected a dashboard message: ${why}`)));
    this.panel.onDidDispose(() => {
      sub.dispose();
      clearTimeout(this.pending);
      onDispose();
    });
  }

  /** Sends the current state now. */
  update(): void {
    this.post({ type: 'dashboard', view: this.view() });
  }

  // Progress events come many per second; the charts need at most a few redraws per second.
  private schedule(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.update();
    }, 200);
  }

  private post(msg: HostToDashboard): void {
    void this.panel.webview.postMessage(msg);
  }

  private receive(msg: DashboardToHost): void {
    switch (msg.type) {
      case 'ready':
        this.post({ type: 'restoreKey', key: this.restoreKey });
        return this.update();
      case 'stopRun':
        if (!this.services.runs.stop(this.dir)) this.tellWhereItRuns();
        return;
      case 'resumeRun':
        return this.resume();
      case 'runStep':
        if (!isLoopStep(msg.step)) return this.services.output.appendLine(`[host] rejected a dashboard message: unknown step ${JSON.stringify(msg.step)}`);
        return this.runStep(msg.step);
      default:
        assertNever(msg);
    }
  }

  // The walkthrough's button runs the studio command of its step on this experiment, as the tree's menu does.
  private runStep(step: LoopStep): void {
    void vscode.commands.executeCommand(COMMANDS[step], this.dir);
  }

  // A run shown as running that this window did not start: another process (a terminal, another window) holds it.
  private tellWhereItRuns(): void {
    const h = readRunLock(this.dir);
    void vscode.window.showInformationMessage(h
      ? `${path.basename(this.dir)} is being fine-tuned by ${h.what} (pid ${h.pid}${h.host === os.hostname() ? '' : ` on ${h.host}`}), not by this window; stop it there.`
      : `${path.basename(this.dir)} is not fine-tuning in this window.`);
  }

  private view(): DashboardView {
    const running = this.services.runs.isRunning(this.dir);
    const s = readRunState(this.dir, running);
    const live = this.services.runs.progressOf(this.dir);
    const uri = (rel: string) => this.panel.webview.asWebviewUri(vscode.Uri.file(resolveInside(this.dir, rel))).toString();
    const cmp = listComparisons(this.dir).at(-1);
    const win = cmp ? compareResult(this.dir, cmp) : undefined;
    return {
      experiment: path.basename(this.dir),
      state: s.state,
      message: s.message,
      epoch: live && running ? live.epoch : s.lastEpoch,
      numEpochs: live?.numEpochs || s.numEpochs,
      phase: running ? live?.message : undefined,
      points: s.points,
      evalEpoch: s.evalEpoch,
      evalImages: s.evalImages.map((e) => ({ prompt: e.prompt, seed: e.seed, reward: Number(e.reward), uri: uri(e.image) })),
      winRate: win && win.winRate.n > 0 ? { ...win.winRate, epoch: win.epoch } : undefined,
      loop: this.loop(running),
    };
  }

  private loop(running: boolean): LoopView {
    const s = readSummary(this.dir, running);
    const next = nextStep(s, ddpoRewardOf(this.dir));
    const win = [...s.comparisons].reverse().find((c) => c.winRate.n > 0);
    return {
      rated: s.ratings,
      rewardAccuracy: s.reward && Number.isFinite(s.reward.accuracy) ? s.reward.accuracy : undefined,
      epochsDone: s.run.points.length,
      numEpochs: s.run.numEpochs,
      winRate: win?.winRate.rate,
      next: { ...next, label: next.step && STEP_LABELS[next.step] },
    };
  }
}
