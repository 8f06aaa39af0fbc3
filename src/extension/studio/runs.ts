/**
 * Fine-tuning runs started from this window: the worker job, a progress notification with Cancel, a
 * status-bar item, and what to tell the person when the worker dies mid-run (why, and a Resume button).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ALGORITHM_NAMES, type DpoEpochPoint, type EpochPoint, type FineTuneProgress, type TrainingAlgorithm } from '../../protocol';
import { WorkerRequestError, type WorkerClient } from '../../worker/client';
import { executionProviderSetting } from '../settings';
import { confirmRewardScript, type RewardScript } from '../../core/ddpo/rewardScript';

/** What listeners (dashboard, tree) hear while a run goes. */
export interface RunEvent {
  experimentDir: string;
  /** The run's algorithm. */
  algorithm?: TrainingAlgorithm;
  progress?: FineTuneProgress;
  finished?: EpochPoint;
  finishedDpo?: DpoEpochPoint;
  ended?: 'done' | 'stopped' | 'failed' | 'crashed';
  message?: string;
}

interface ActiveRun {
  algorithm: TrainingAlgorithm;
  abort: AbortController;
  last?: FineTuneProgress;
}


/** Starts, stops and tracks fine-tuning runs. */
export class RunManager implements vscode.Disposable {
  private readonly active = new Map<string, ActiveRun>();
  private readonly emitter = new vscode.EventEmitter<RunEvent>();
  private readonly statusBar = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  /** Fires on every progress event and when a run ends. */
  readonly onDidChange = this.emitter.event;

  constructor(private readonly worker: WorkerClient, private readonly output: vscode.OutputChannel, private readonly openDashboard: (dir: string) => void, private readonly globalState: vscode.Memento) {
    this.statusBar.name = 'DDPO Studio fine-tuning';
  }

  /** True while this window's worker runs the experiment's fine-tuning (of `algorithm`, when given). */
  isRunning(experimentDir: string, algorithm?: TrainingAlgorithm): boolean {
    const run = this.active.get(experimentDir);
    return !!run && (algorithm === undefined || run.algorithm === algorithm);
  }

  /** The algorithm of the experiment's run under way in this window. */
  algorithmOf(experimentDir: string): TrainingAlgorithm | undefined {
    return this.active.get(experimentDir)?.algorithm;
  }

  /** True while any run is going in this window. */
  get anyRunning(): boolean {
    return this.active.size > 0;
  }

  /** The latest progress of a running experiment. */
  progressOf(experimentDir: string): FineTuneProgress | undefined {
    return this.active.get(experimentDir)?.last;
  }

  /** Starts (or resumes) fine-tuning with `algorithm`; resolves when the run ends, however it ends. */
  async start(experimentDir: string, modelDir: string, resume: boolean, algorithm: TrainingAlgorithm = 'ddpo'): Promise<void> {
    const name = path.basename(experimentDir);
    if (this.active.has(experimentDir)) {
      this.openDashboard(experimentDir);
      return;
    }
    // a script reward is DDPO's; Diffusion-DPO runs no reward
    const confirmed = algorithm === 'ddpo' ? await this.confirmRewardScript(experimentDir) : {};
    if (!confirmed || this.active.has(experimentDir)) return;
    const run: ActiveRun = { algorithm, abort: new AbortController() };
    this.active.set(experimentDir, run);
    this.updateStatusBar();
    this.emitter.fire({ experimentDir, algorithm });
    const what = algorithm === 'ddpo' ? 'fine-tuning' : `fine-tuning (${ALGORITHM_NAMES[algorithm]})`;
    // The notification closes when the run ends; what happened is told afterwards, outside it.
    const outcome = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DDPO Studio: ${what} ${name}`, cancellable: true }, async (progress, token) => {
      token.onCancellationRequested(() => run.abort.abort());
      let reported = 0;
      try {
        const r = await this.worker.request('startFineTune', { experimentDir, modelDir, resume, algorithm, executionProvider: executionProviderSetting(), rewardScript: confirmed.script }, {
          signal: run.abort.signal,
          onProgress: (p) => {
            run.last = p;
            const frac = Math.min(1, Math.max(0, p.fraction ?? 0));
            progress.report({ message: p.message, increment: Math.max(0, (frac - reported) * 100) });
            reported = Math.max(reported, frac);
            this.updateStatusBar();
            this.emitter.fire({ experimentDir, algorithm, progress: p, finished: p.finished, finishedDpo: p.finishedDpo });
          },
        });
        return r;
      } catch (e) {
        return e as WorkerRequestError;
      }
    });
    if (!(outcome instanceof Error)) {
      this.end(experimentDir, 'done');
      // a run the divergence guard ended is finished too, with the weights from before the spike
      const what = `${ALGORITHM_NAMES[algorithm]} fine-tuning of ${name}`;
      const text = outcome.stoppedEarly ? `${what} ${outcome.stoppedEarly}.` : `${what} finished.`;
      void (outcome.stoppedEarly ? vscode.window.showWarningMessage : vscode.window.showInformationMessage)(text, 'Open Dashboard').then((pick) => pick && this.openDashboard(experimentDir));
    } else if (outcome.code === 'cancelled') {
      this.end(experimentDir, 'stopped');
      void vscode.window.showInformationMessage(`Fine-tuning of ${name} stopped; its checkpoints are kept.`, 'Resume').then((pick) => pick && void this.start(experimentDir, modelDir, true, algorithm));
    } else if (outcome.code === 'worker-crashed') {
      const why = outcome.message.replace(/\s*It restarts on the next request\.$/, '');
      this.end(experimentDir, 'crashed', why);
      this.output.appendLine(`[host] fine-tuning of ${name} interrupted: ${why}`);
      void vscode.window.showErrorMessage(`Fine-tuning of ${name} was interrupted. ${why} Resume continues from the last checkpoint.`, 'Resume', 'Show Worker Log').then((pick) => {
        if (pick === 'Resume') void this.start(experimentDir, modelDir, true, algorithm);
        else if (pick === 'Show Worker Log') this.output.show(true);
      });
    } else {
      this.end(experimentDir, 'failed', outcome.message);
      this.output.appendLine(`[host] fine-tuning of ${name} failed: ${outcome.detail ?? outcome.message}`);
      void vscode.window.showErrorMessage(`Fine-tuning of ${name} failed: ${outcome.message}`, 'Show Worker Log').then((pick) => pick && this.output.show(true));
    }
  }

  /** Stops a running fine-tuning (it keeps its checkpoints). */
  stop(experimentDir: string): boolean {
    const run = this.active.get(experimentDir);
    run?.abort.abort();
    return !!run;
  }

  dispose(): void {
    for (const r of this.active.values()) r.abort.abort();
    this.statusBar.dispose();
    this.emitter.dispose();
  }

  // A script reward runs only after the person confirmed its path and content once (kept in global state, which the
  // worker cannot write and which does not travel with a shared experiment folder).
  private async confirmRewardScript(experimentDir: string): Promise<{ script?: RewardScript } | undefined> {
    const name = path.basename(experimentDir);
    try {
      const r = await confirmRewardScript(this.globalState, experimentDir, async (s, changed) => {
        const pick = await vscode.window.showWarningMessage(
          `${changed ? 'The reward script has changed since you confirmed it. ' : ''}Fine-tuning ${name} runs the reward script ${s.file}, JavaScript with your permissions. Run it?`,
          { modal: true, detail: `sha256 ${s.sha256}\nRun it only if you wrote it or trust where it came from. You are asked again whenever it changes.` },
          'Run Script',
        );
        return pick === 'Run Script';
      });
      if (!r) void vscode.window.showInformationMessage(`Fine-tuning of ${name} not started: its reward script was not confirmed.`);
      return r;
    } catch (e) {
      void vscode.window.showErrorMessage(`Fine-tuning of ${name} not started: ${(e as Error).message}`);
      return undefined;
    }
  }

  private end(experimentDir: string, how: RunEvent['ended'], message?: string): void {
    const algorithm = this.active.get(experimentDir)?.algorithm;
    this.active.delete(experimentDir);
    this.updateStatusBar();
    this.emitter.fire({ experimentDir, algorithm, ended: how, message });
  }

  private updateStatusBar(): void {
    const [first] = this.active.entries();
    if (!first) return this.statusBar.hide();
    const [dir, run] = first;
    const p = run.last;
    const where = !p ? 'starting' : p.phase === 'download' ? p.message : `epoch ${p.epoch + 1}/${p.numEpochs}`;
    this.statusBar.text = `$(sync~spin) ${ALGORITHM_NAMES[run.algorithm]} ${path.basename(dir)}: ${where}`;
    this.statusBar.tooltip = `Fine-tuning ${dir}${p?.message ? `\n${p.message}` : ''}\nClick to open the training dashboard.`;
    this.statusBar.command = { command: 'ddpoStudio.openDashboard', title: 'Open Dashboard', arguments: [dir] };
    this.statusBar.accessibilityInformation = { label: `DDPO Studio is fine-tuning ${path.basename(dir)}${p?.phase === 'download' ? `, ${p.message}` : p ? `, epoch ${p.epoch + 1} of ${p.numEpochs}` : ''}` };
    this.statusBar.show();
  }
}
