/** Typed access to the `ddpoStudio.*` settings. */
import * as vscode from 'vscode';
import { EXECUTION_PROVIDER_SETTINGS, type ExecutionProviderSetting } from '../protocol';

/** The `ddpoStudio.executionProvider` setting ("auto" when unset or unknown). */
export function executionProviderSetting(): ExecutionProviderSetting {
  const v = vscode.workspace.getConfiguration('ddpoStudio').get<string>('executionProvider', 'auto');
  return (EXECUTION_PROVIDER_SETTINGS as readonly string[]).includes(v) ? (v as ExecutionProviderSetting) : 'auto';
}
