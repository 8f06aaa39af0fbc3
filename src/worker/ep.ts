/**
 * Picks the onnxruntime execution provider from the user's setting and what this machine offers.
 * TODO: switch to src/core/runtime/providers.ts (chooseExecutionProviders + openWithFallback) once the pipeline
 * and the DDPO policy open their sessions through it; today studio jobs run on CPU (src/worker/models.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExecutionProviderSetting } from '../protocol';

// Preference order for "auto": a native GPU provider when one is installed, else CPU. WebGPU is opt-in
// (it is bundled everywhere but needs a GPU adapter, which headless machines lack).
const AUTO_ORDER = ['cuda', 'dml', 'coreml', 'cpu'];

/** A backend as onnxruntime-node's listSupportedBackends() reports it. */
export interface ListedBackend {
  name: string;
  bundled: boolean;
}

/**
 * Splits listed backends into usable ones and ones whose binaries are missing. Non-bundled providers
 * (CUDA, TensorRT) are usable only when their library was installed next to the binding.
 */
export function usableBackends(listed: readonly ListedBackend[], bindingDir: string | undefined): { usable: string[]; missing: string[] } {
  const usable: string[] = [];
  const missing: string[] = [];
  for (const b of listed) {
    const lib = bindingDir && ['.so', '.dll'].some((ext) => fs.existsSync(path.join(bindingDir, `${process.platform === 'win32' ? '' : 'lib'}onnxruntime_providers_${b.name}${ext}`)));
    (b.bundled || lib ? usable : missing).push(b.name);
  }
  return { usable, missing };
}

/** Folder holding onnxruntime_binding.node for this platform, or undefined if it cannot be found. */
export function ortBindingDir(): string | undefined {
  try {
    const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
    return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

/** The provider to use; throws with a fix-it message when the requested one is not available here. */
export function chooseExecutionProvider(setting: ExecutionProviderSetting, available: readonly string[]): string {
  if (setting === 'auto') return AUTO_ORDER.find((ep) => available.includes(ep)) ?? 'cpu';
  if (setting === 'cpu' || available.includes(setting)) return setting;
  throw new Error(`Execution provider "${setting}" is not available on this machine (usable: ${available.join(', ') || 'none'}). Set "ddpoStudio.executionProvider" to "auto" or one of those.`);
}
