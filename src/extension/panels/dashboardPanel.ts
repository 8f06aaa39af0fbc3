/**
 * The training dashboard of one experiment: for DDPO live reward, KL and clip-fraction charts, for Diffusion-DPO the
 * loss and the implicit reward accuracy; the newest evaluation images; the latest blind comparison's win rate.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ddpoLayout } from '../../core/ddpo/layout';
import { resolveInside } from '../../core/fsutil';
import { readRunLock } from '../../core/experiment/runLock';
import { ddpoRewardOf, hasRun, runToShow } from '../../core/studio/runState';
import { latestResult } from '../../core/studio/compare';
import { loopView } from '../../core/studio/nextStep';
import { readSummary, summaryRun } from '../../core/studio/summary';
import { runLoopStep } from './walkthrough';
import { assertNever, isTrainingAlgorithm, panelReceiver, TRAINING_ALGORITHMS, type DashboardToHost, type DashboardView, type HostToDashboard, type TrainingAlgorithm } from '../../protocol';
import type { Services } from '../services';
import { openWebviewPanel, webviewHtml } from './webviewHtml';
import { rememberPanel } from './restore';

const open = new Map<string, DashboardPanel>();

/**
 * Opens (or reveals) the dashboard of an experiment, showing the run of `algorithm` (default: the run under way, else
 * the newest); `resume` is what its Resume button does for the run shown; `restored` comes back after a reload.
 */
export function openDashboardPanel(services: Services, experimentDir: string, resume: (algorithm: TrainingAlgorithm) => void, restored?: vscode.WebviewPanel, algorithm?: TrainingAlgorithm): void {
  const existing = open.get(experimentDir);
  if (existing) {
    restored?.dispose();
    if (algorithm) existing.show(algorithm);
    return existing.panel.reveal();
  }
  const shown = algorithm ?? runToShow(experimentDir, services.runs.algorithmOf(experimentDir));
  open.set(experimentDir, new DashboardPanel(services, experimentDir, resume, () => open.delete(experimentDir), shown, restored));
}

/** Redraws every open dashboard of `experimentDir` (after a file change on disk). */
export function refreshDashboard(experimentDir: string): void {
  open.get(experimentDir)?.update();
}

class DashboardPanel {
  readonly panel: vscode.WebviewPanel;
  private pending: NodeJS.Timeout | undefined;
  private readonly restoreKey: string;

  constructor(private readonly services: Services, private readonly dir: string, private readonly resume: (algorithm: TrainingAlgorithm) => void, onDispose: () => void, private algorithm: TrainingAlgorithm, restored?: vscode.WebviewPanel) {
    const { extensionUri } = services.context;
    const name = path.basename(dir);
    this.panel = openWebviewPanel(extensionUri, 'ddpoStudio.dashboard', `Training: ${name}`, TRAINING_ALGORITHMS.map((a) => ddpoLayout(dir, a).evalDir), restored);
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

  /** Shows the run of `algorithm`. */
  show(algorithm: TrainingAlgorithm): void {
    this.algorithm = algorithm;
    this.update();
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
        return this.resume(this.algorithm);
      case 'showRun':
        if (isTrainingAlgorithm(msg.algorithm)) this.show(msg.algorithm);
        return;
      case 'runStep':
        return runLoopStep(this.services, 'dashboard', this.dir, msg.step, this.algorithm);
      default:
        assertNever(msg);
    }
  }


  // A run shown as running that this window did not start: another process (a terminal, another window) holds it.
  private tellWhereItRuns(): void {
    const h = readRunLock(this.dir);
    void vscode.window.showInformationMessage(h
      ? `${path.basename(this.dir)} is being fine-tuned by ${h.what} (pid ${h.pid}${h.host === os.hostname() ? '' : ` on ${h.host}`}), not by this window; stop it there.`
      : `${path.basename(this.dir)} is not fine-tuning in this window.`);
  }

  private view(): DashboardView {
    // one read of the experiment serves the run shown, the latest comparison and the walkthrough
    const summary = readSummary(this.dir, (a) => this.services.runs.isRunning(this.dir, a));
    const running = this.services.runs.isRunning(this.dir, this.algorithm);
    const s = summaryRun(this.dir, summary, this.algorithm);
    const live = running ? this.services.runs.progressOf(this.dir) : undefined;
    const uri = (rel: string) => this.panel.webview.asWebviewUri(vscode.Uri.file(resolveInside(this.dir, rel))).toString();
    const win = latestResult(summary.comparisons);
    return {
      experiment: path.basename(this.dir),
      algorithm: this.algorithm,
      runs: TRAINING_ALGORITHMS.filter((a) => a === this.algorithm || hasRun(this.dir, a) || this.services.runs.isRunning(this.dir, a)),
      state: s.state,
      message: s.message,
      epoch: live && running ? live.epoch : s.lastEpoch,
      numEpochs: live?.numEpochs || s.numEpochs,
      phase: running ? live?.message : undefined,
      points: s.points,
      dpoPoints: s.dpoPoints ?? [],
      evalEpoch: s.evalEpoch,
      evalImages: s.evalImages.map((e) => ({ prompt: e.prompt, seed: e.seed, reward: Number(e.reward), uri: uri(e.image) })),
      winRate: win ? { ...win.winRate, label: win.label, epoch: win.b.kind === 'checkpoint' ? win.b.epoch : -1 } : undefined,
      loop: loopView(summary, s, { reward: ddpoRewardOf(this.dir), algorithm: this.algorithm }),
    };
  }

}
