/** Extension tests run inside desktop VS Code by @vscode/test-electron (no mocha: plain async checks). */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { WorkerStatus } from '../../../../src/protocol';

/** Entry point called by the test host; rejects on the first failed check. */
export async function run(): Promise<void> {
  const ext = vscode.extensions.getExtension('ddpo-studio.ddpo-studio');
  assert.ok(ext, 'extension ddpo-studio.ddpo-studio is installed');
  await ext.activate();
  const commands = await vscode.commands.getCommands(true);
  for (const id of ['ddpoStudio.newExperiment', 'ddpoStudio.refresh', 'ddpoStudio.showWorkerLog', 'ddpoStudio.workerStatus']) assert.ok(commands.includes(id), `command ${id} is registered`);

  const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  assert.ok(ws, 'a workspace folder is open');
  const name = await vscode.commands.executeCommand<string>('ddpoStudio.newExperiment', 'electron-test');
  assert.equal(name, 'electron-test');
  assert.ok(fs.existsSync(path.join(ws, '.ddpo', 'electron-test', 'experiment.json')));

  const status = await vscode.commands.executeCommand<WorkerStatus>('ddpoStudio.workerStatus');
  assert.ok(status?.executionProviders.includes('cpu'), 'the worker lists the CPU execution provider');
  console.log('electron e2e: 3 passed, 0 failed');
}
