/** The extension's worker: a lazily forked dist/worker.js whose output goes to the "DDPO Studio" channel. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { WorkerClient } from '../worker/client';
import { forkChannelFactory } from '../worker/forkChannel';
import { cudaLibraryEnv } from '../core/runtime/cudaLibraries';

/**
 * Creates the worker client; the process starts on the first request and restarts after a crash.
 * `quietCrash()` returning true skips the generic crash message (a running job tells the person itself).
 */
export function createWorkerClient(context: vscode.ExtensionContext, output: vscode.OutputChannel, quietCrash: () => boolean = () => false): WorkerClient {
  const script = path.join(context.extensionPath, 'dist', 'worker.js');
  const client = new WorkerClient(
    // the loader reads LD_LIBRARY_PATH only at start: the CUDA libraries `ddpo install-cuda` found go in at each fork
    forkChannelFactory({ script, onOutput: (text) => output.append(text), env: () => cudaLibraryEnv(process.env) ?? process.env }),
    {
      onStart: () => output.appendLine(`[host] starting worker ${script}`),
      log: (line) => output.appendLine(`[host] ${line}`),
      onCrash: ({ exit, lastError }) => {
        output.appendLine(`[host] worker stopped (code ${exit.code}, signal ${exit.signal}): ${lastError}`);
        if (quietCrash()) return;
        void vscode.window.showErrorMessage(`DDPO Studio worker crashed: ${lastError}. It will restart on the next request.`, 'Show Worker Log').then((pick) => {
          if (pick) output.show(true);
        });
      },
    },
  );
  context.subscriptions.push({ dispose: () => client.dispose() });
  return client;
}
