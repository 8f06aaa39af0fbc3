/** The walkthrough's button, in any panel that shows it: the studio command of the loop's next step, on one experiment. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isLoopStep } from '../../core/studio/nextStep';
import type { TrainingAlgorithm } from '../../protocol';
import { COMMANDS } from '../commands/ids';
import type { Services } from '../services';
import type { RunArg } from '../studio/pick';

/**
 * Runs `step` (a webview's message, checked here) on the experiment in `experimentDir`, as the tree's menu does;
 * fine-tuning and comparing act on the run of `algorithm`, the one the panel shows.
 */
export function runLoopStep(services: Services, panel: 'dashboard' | 'experiment panel', experimentDir: string, step: string, algorithm: TrainingAlgorithm): void {
  if (!isLoopStep(step)) return services.output.appendLine(`[host] rejected ${panel === 'dashboard' ? 'a' : 'an'} ${panel} message: unknown step ${JSON.stringify(step)}`);
  const run: RunArg = { experiment: path.basename(experimentDir), algorithm };
  void vscode.commands.executeCommand(COMMANDS[step], step === 'startFineTune' || step === 'compare' ? run : experimentDir);
}
