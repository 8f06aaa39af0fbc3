/** `status`: node and onnxruntime versions, the execution providers onnxruntime offers here, and which one opens. */
import type { WorkerStatus } from '../../protocol';
import { describeProviderChoice } from '../../core/runtime/providers';
import { probeProvider } from '../../core/runtime/sessionProviders';
import type { JobHandler } from '../jobs';
import { jobProviders, machineBackends } from '../../core/runtime/jobProviders';
import { providerSetting } from './params';
import { lastBackboneOpened } from '../rewardBackbones';

/** Handler for `status`. */
export const statusHandler: JobHandler<'status'> = {
  parse: (params) => ({ executionProvider: providerSetting(params as Record<string, unknown>) }),
  async run(params) {
    const base = { pid: process.pid, node: process.versions.node, platform: process.platform, arch: process.arch, uptimeSeconds: Math.round(process.uptime()) };
    let ort: typeof import('onnxruntime-node');
    try {
      ort = await import('onnxruntime-node');
    } catch (e) {
      const msg = `onnxruntime-node failed to load: ${(e as Error).message}`;
      return { ...base, onnxruntime: null, onnxruntimeError: msg, executionProviders: [], missingExecutionProviders: [], chosenExecutionProvider: 'none' } satisfies WorkerStatus;
    }
    const backends = await machineBackends();
    const eps = backends.filter((b) => b.installed).map((b) => b.name);
    const missing = backends.filter((b) => !b.installed).map((b) => b.name);
    // A provider may be listed yet fail to start (WebGPU without an adapter): open a one-node model to find out.
    const jp = jobProviders(params.executionProvider ?? 'auto', backends, () => undefined);
    let chosen: string, providerChoice: string;
    try {
      const opened = await probeProvider(jp);
      chosen = opened.ep;
      providerChoice = describeProviderChoice(jp.plan, opened);
    } catch (e) {
      chosen = 'none';
      providerChoice = `no execution provider opens a model: ${(e as Error).message}`;
    }
    const rewardBackbone = lastBackboneOpened();
    return {
      ...base, onnxruntime: ort.env.versions.node ?? ort.env.versions.common, executionProviders: eps, missingExecutionProviders: missing, chosenExecutionProvider: chosen, providerChoice,
      ...(rewardBackbone ? { rewardBackbone } : {}),
    } satisfies WorkerStatus;
  },
};
