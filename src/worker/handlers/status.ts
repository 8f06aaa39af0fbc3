/** `status`: node and onnxruntime versions, and the execution providers onnxruntime offers here. */
import { EXECUTION_PROVIDER_SETTINGS, type ExecutionProviderSetting, type WorkerStatus } from '../../protocol';
import type { JobHandler } from '../jobs';
import { chooseExecutionProvider, ortBindingDir, usableBackends } from '../ep';

/** Handler for `status`. */
export const statusHandler: JobHandler<'status'> = {
  parse(params) {
    const ep = (params as { executionProvider?: unknown }).executionProvider;
    if (ep !== undefined && !EXECUTION_PROVIDER_SETTINGS.includes(ep as ExecutionProviderSetting)) throw new Error(`executionProvider must be one of ${EXECUTION_PROVIDER_SETTINGS.join(', ')}`);
    return { executionProvider: ep as ExecutionProviderSetting | undefined };
  },
  async run(params) {
    const base = { pid: process.pid, node: process.versions.node, platform: process.platform, arch: process.arch, uptimeSeconds: Math.round(process.uptime()) };
    let ort: typeof import('onnxruntime-node');
    try {
      ort = await import('onnxruntime-node');
    } catch (e) {
      const msg = `onnxruntime-node failed to load: ${(e as Error).message}`;
      return { ...base, onnxruntime: null, onnxruntimeError: msg, executionProviders: [], missingExecutionProviders: [], chosenExecutionProvider: 'none' } satisfies WorkerStatus;
    }
    const { usable: eps, missing } = usableBackends(ort.listSupportedBackends(), ortBindingDir());
    let chosen: string;
    try {
      chosen = chooseExecutionProvider(params.executionProvider ?? 'auto', eps);
    } catch (e) {
      chosen = `unavailable: ${(e as Error).message}`;
    }
    return { ...base, onnxruntime: ort.env.versions.node ?? ort.env.versions.common, executionProviders: eps, missingExecutionProviders: missing, chosenExecutionProvider: chosen } satisfies WorkerStatus;
  },
};
