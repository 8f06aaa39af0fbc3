/** The studio's commands: rate, train the reward model, fine-tune, compare, export, reveal, delete. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ExperimentBusyError, withRunLock } from '../../core/experiment/runLock';
import { ddpoLayout } from '../../core/ddpo/layout';
import { atomicWriteFileSync } from '../../core/fsutil';
import { presetById } from '../../core/studio/presets';
import { ALGORITHM_NAMES, type TrainingAlgorithm } from '../../protocol';
import { openDashboardPanel } from '../panels/dashboardPanel';
import { openRatingPanel } from '../panels/ratingPanel';
import type { Services } from '../services';
import { modelDirOf } from '../studio/models';
import { pickExperiment, type PickedExperiment } from '../studio/pick';
import { checkpointSides, pickAlgorithm, warnNoCheckpoint } from '../studio/pickRun';
import { executionProviderSetting } from '../settings';

/** Ratings a session aims for unless experiment.json's settings.ratingTarget says otherwise. */
const DEFAULT_RATING_TARGET = 50;

/** The experiment's model folder, or undefined after telling the person why there is none. */
export function modelDir(services: Services, x: PickedExperiment): string | undefined {
  try {
    return modelDirOf(services.context, x.experiment, x.dir);
  } catch (e) {
    void vscode.window.showErrorMessage((e as Error).message);
    return undefined;
  }
}

/** "Rate Pairs": opens the rating panel. */
export async function ratePairs(services: Services, arg?: unknown): Promise<void> {
  const x = await pickExperiment(arg, 'Rate pairs of which experiment?');
  if (!x) return;
  const dir = modelDir(services, x);
  if (!dir) return;
  if (x.experiment.prompts.length === 0) return void vscode.window.showWarningMessage(`"${x.name}" has no prompts yet: add some in its panel or experiment.json first.`);
  const target = Number(x.experiment.settings.ratingTarget) > 0 ? Number(x.experiment.settings.ratingTarget) : DEFAULT_RATING_TARGET;
  openRatingPanel(services, { mode: 'rate', experiment: x.name, experimentDir: x.dir, modelDir: dir, target });
}

/** "Train Reward Model". */
export async function trainReward(services: Services, arg?: unknown): Promise<void> {
  const x = await pickExperiment(arg, 'Train the reward model of which experiment?');
  if (!x) return;
  try {
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DDPO Studio: training the reward model of ${x.name}`, cancellable: true }, (progress, token) => {
      const ctl = new AbortController();
      token.onCancellationRequested(() => ctl.abort());
      return services.worker.request('trainReward', { experimentDir: x.dir, executionProvider: executionProviderSetting() }, { signal: ctl.signal, onProgress: (p) => progress.report({ message: p.message }) });
    });
    const acc = Number.isFinite(r.accuracy) ? `${Math.round(r.accuracy * 100)}% held-out accuracy` : 'no held-out pairs yet';
    void vscode.window.showInformationMessage(`Reward model of ${x.name} trained on ${r.comparisons} comparisons with ${r.backbone}: ${acc}. ${r.summary}${r.warmStart ? ` ${r.warmStart}.` : ''}`);
  } catch (e) {
    void vscode.window.showErrorMessage(`Could not train the reward model of ${x.name}: ${(e as Error).message}`);
  }
}

/** Writes ddpo.json from the CPU preset when the experiment has none yet (never over one written meanwhile). */
function ensureDdpoConfig(x: PickedExperiment): void {
  const file = ddpoLayout(x.dir).configFile;
  try {
    if (!fs.existsSync(file)) atomicWriteFileSync(file, JSON.stringify(presetById('cpu-quick').ddpo, null, 2) + '\n', { replace: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

/** "Start Fine-Tuning" (resume: continue from the newest checkpoint), with DDPO or Diffusion-DPO. */
export async function startFineTune(services: Services, arg: unknown, resume: boolean, chosen?: TrainingAlgorithm): Promise<void> {
  const x = await pickExperiment(arg, resume ? 'Resume fine-tuning of which experiment?' : 'Fine-tune which experiment?');
  if (!x) return;
  const dir = modelDir(services, x);
  if (!dir) return;
  const algorithm = chosen ?? await pickAlgorithm(x, resume ? `Resume which fine-tuning run of ${x.name}?` : `Fine-tune ${x.name} with`, resume);
  if (!algorithm) return;
  ensureDdpoConfig(x);
  const layout = ddpoLayout(x.dir, algorithm);
  const hasRun = fs.existsSync(layout.metricsFile) && fs.statSync(layout.metricsFile).size > 0;
  if (hasRun && !resume) {
    const pick = await vscode.window.showWarningMessage(`${x.name} already has a ${ALGORITHM_NAMES[algorithm]} run. Resume it, or delete its ${path.basename(layout.runDir)}/ folder to start over?`, { modal: true }, 'Resume', 'Start Over');
    if (!pick) return;
    if (pick === 'Start Over' && !(await underRunLock(x.dir, 'DDPO Studio start over', () => fs.promises.rm(layout.runDir, { recursive: true, force: true })))) return;
    resume = pick === 'Resume';
  }
  openDashboard(services, x.dir, undefined, algorithm);
  await services.runs.start(x.dir, dir, resume, algorithm);
}

/** "Stop Fine-Tuning". */
export async function stopFineTune(services: Services, arg?: unknown): Promise<void> {
  const x = await pickExperiment(arg, 'Stop fine-tuning of which experiment?');
  if (x && !services.runs.stop(x.dir)) void vscode.window.showInformationMessage(`${x.name} is not fine-tuning in this window.`);
}

/** "Open Training Dashboard" of a run (`algorithm`; default the one under way, else the newest); `restored`: the panel VS Code brought back after a reload. */
export function openDashboard(services: Services, dir: string, restored?: vscode.WebviewPanel, algorithm?: TrainingAlgorithm): void {
  openDashboardPanel(services, dir, (a) => void startFineTune(services, dir, true, a), restored, algorithm);
}

/** "Export LoRA". */
export async function exportLora(services: Services, arg?: unknown): Promise<void> {
  const x = await pickExperiment(arg, 'Export the LoRA of which experiment?');
  if (!x) return;
  if (checkpointSides(x.dir).length === 0) return warnNoCheckpoint(x.name);
  const fmt = await vscode.window.showQuickPick(
    [{ label: 'kohya', detail: 'lora_unet_* names: Automatic1111, ComfyUI' }, { label: 'peft', detail: 'diffusers names: pipe.load_lora_weights' }],
    { title: `Export the LoRA of ${x.name}`, placeHolder: 'Which naming?' },
  );
  if (!fmt) return;
  try {
    const epoch = x.node?.kind === 'checkpoint' ? x.node.epoch : undefined;
    const algorithm = x.node?.kind === 'checkpoint' ? x.node.algorithm : await pickAlgorithm(x, `Export the LoRA of which run of ${x.name}?`, true);
    if (!algorithm) return;
    const r = await services.worker.request('exportLora', { experimentDir: x.dir, format: fmt.label as 'kohya' | 'peft', epoch, algorithm });
    const pick = await vscode.window.showInformationMessage(`Exported the ${ALGORITHM_NAMES[algorithm]} epoch ${r.epoch + 1} LoRA to ${r.file}`, 'Reveal');
    if (pick) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(r.file));
  } catch (e) {
    void vscode.window.showErrorMessage(`Could not export the LoRA of ${x.name}: ${(e as Error).message}`);
  }
}

/** "Reveal in Explorer". */
export async function revealExperiment(arg?: unknown): Promise<void> {
  const x = await pickExperiment(arg, 'Reveal which experiment?');
  if (x) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(x.dir));
}

/** "Delete Experiment", after a modal confirmation. */
export async function deleteExperiment(services: Services, arg?: unknown): Promise<void> {
  const x = await pickExperiment(arg, 'Delete which experiment?');
  if (!x) return;
  if (services.runs.isRunning(x.dir)) return void vscode.window.showWarningMessage(`${x.name} is fine-tuning; stop it before deleting.`);
  const pick = await vscode.window.showWarningMessage(`Delete the experiment "${x.name}"? Its folder ${x.dir} with all ratings, reward model and checkpoints is removed.`, { modal: true }, 'Delete');
  if (pick !== 'Delete') return;
  await underRunLock(x.dir, 'DDPO Studio delete', () => fs.promises.rm(x.dir, { recursive: true, force: true }));
}

// Removes what a job may be writing only while holding the experiment's run lock: a run under way anywhere (this
// window's worker, another window, a `ddpo` terminal) refuses, naming itself, and nothing is deleted. False when refused.
async function underRunLock(dir: string, what: string, remove: () => Promise<void>): Promise<boolean> {
  try {
    await withRunLock(dir, what, remove);
    return true;
  } catch (e) {
    if (!(e instanceof ExperimentBusyError)) throw e;
    void vscode.window.showWarningMessage(`Nothing was deleted: ${e.message}`);
    return false;
  }
}
