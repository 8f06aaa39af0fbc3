/** "DDPO Studio: Worker Status": asks the worker for versions and execution providers. */
import * as vscode from 'vscode';
import type { Experiment } from '../../core/experiment/schema';
import { describeBackboneChoice, rewardBackboneOf } from '../../core/reward/backboneRef';
import type { WorkerStatus } from '../../protocol';
import { executionProviderSetting } from '../settings';
import type { Services } from '../services';
import { currentStore } from '../workspaceStore';

/** One short line describing the worker, as shown in the notification. */
export function describeStatus(s: WorkerStatus): string {
  const ort = s.onnxruntime ? `onnxruntime ${s.onnxruntime}` : `onnxruntime not loaded (${s.onnxruntimeError})`;
  const backbone = s.rewardBackbone ? ` Reward backbone: ${s.rewardBackbone}.` : '';
  return `Worker ready: ${ort}, node ${s.node}; execution providers: ${s.executionProviders.join(', ') || 'none'}; using ${s.chosenExecutionProvider}.${backbone}`;
}

/**
 * The full report written to the output channel: the worker, the backbone it opened last, and the one each experiment
 * of the workspace trains its reward model on (`experiments`: name and experiment; a worker that has run no job yet
 * still says which backbones its jobs will open).
 */
export function describeStatusLong(s: WorkerStatus, experiments: readonly { name: string; experiment: Experiment }[] = []): string {
  const missing = s.missingExecutionProviders.length ? `\n  listed but not installed: ${s.missingExecutionProviders.join(', ')} (install onnxruntime-node's GPU binaries to use them)` : '';
  const choice = s.providerChoice ? `\n  ${s.providerChoice}` : '';
  const backbone = `\n  reward backbone opened last: ${s.rewardBackbone ?? 'none yet'}`;
  const chosen = experiments.map((e) => {
    const ref = rewardBackboneOf(e.experiment);
    return `\n    ${e.name}: ${describeBackboneChoice(ref)}${e.experiment.rewardPrior ? `, starting from ${e.experiment.rewardPrior}` : ''}`;
  }).join('');
  return `worker pid ${s.pid}, ${s.platform}-${s.arch}, up ${s.uptimeSeconds} s\n  ${describeStatus(s)}${choice}${backbone}${chosen ? `\n  reward backbones the experiments train on:${chosen}` : ''}${missing}`;
}

/** Requests `status` and shows the answer; errors (incl. a crashed worker) are shown, not thrown. */
export async function workerStatus(services: Services): Promise<WorkerStatus | undefined> {
  try {
    const status = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'DDPO Studio: asking the worker' },
      () => services.worker.request('status', { executionProvider: executionProviderSetting() }),
    );
    const line = describeStatus(status);
    const experiments = (await currentStore()?.list().catch(() => []) ?? []).flatMap((e) => (e.status === 'ok' ? [e] : []));
    services.output.appendLine(`[host] ${describeStatusLong(status, experiments)}`);
    void vscode.window.showInformationMessage(line);
    return status;
  } catch (e) {
    void vscode.window.showErrorMessage(`DDPO Studio worker did not answer: ${(e as Error).message}`);
    return undefined;
  }
}
