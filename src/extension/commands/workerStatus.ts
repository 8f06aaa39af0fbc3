/** "DDPO Studio: Worker Status": asks the worker for versions and execution providers. */
import * as vscode from 'vscode';
import type { WorkerStatus } from '../../protocol';
import { executionProviderSetting } from '../settings';
import type { Services } from '../services';

/** One short line describing the worker, as shown in the notification. */
export function describeStatus(s: WorkerStatus): string {
  const ort = s.onnxruntime ? `onnxruntime ${s.onnxruntime}` : `onnxruntime not loaded (${s.onnxruntimeError})`;
  const backbone = s.rewardBackbone ? ` Reward backbone: ${s.rewardBackbone}.` : '';
  return `Worker ready: ${ort}, node ${s.node}; execution providers: ${s.executionProviders.join(', ') || 'none'}; using ${s.chosenExecutionProvider}.${backbone}`;
}

/** The full report written to the output channel. */
function describeStatusLong(s: WorkerStatus): string {
  const missing = s.missingExecutionProviders.length ? `\n  listed but not installed: ${s.missingExecutionProviders.join(', ')} (install onnxruntime-node's GPU binaries to use them)` : '';
  const choice = s.providerChoice ? `\n  ${s.providerChoice}` : '';
  const backbone = `\n  reward backbone: ${s.rewardBackbone ?? 'none opened yet (each experiment names its own; the Experiments tree shows it under Reward model)'}`;
  return `worker pid ${s.pid}, ${s.platform}-${s.arch}, up ${s.uptimeSeconds} s\n  ${describeStatus(s)}${choice}${backbone}${missing}`;
}

/** Requests `status` and shows the answer; errors (incl. a crashed worker) are shown, not thrown. */
export async function workerStatus(services: Services): Promise<WorkerStatus | undefined> {
  try {
    const status = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'DDPO Studio: asking the worker' },
      () => services.worker.request('status', { executionProvider: executionProviderSetting() }),
    );
    const line = describeStatus(status);
    services.output.appendLine(`[host] ${describeStatusLong(status)}`);
    void vscode.window.showInformationMessage(line);
    return status;
  } catch (e) {
    void vscode.window.showErrorMessage(`DDPO Studio worker did not answer: ${(e as Error).message}`);
    return undefined;
  }
}
