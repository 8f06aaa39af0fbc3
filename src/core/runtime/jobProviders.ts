/** A job's execution providers (the studio worker's and `ddpo train --ep`): one plan per job, one report line per model. */
import { chooseExecutionProviders, describeProviderChoice, listBackends, type BackendInfo, type ProviderPlan, type ProviderSetting } from './providers';
import { providersKey, type SessionProviders } from './sessionProviders';
import { describePlacement } from './placement';

/** The providers every session of one job tries, the plan they came from, and a key for caching sessions by choice. */
export interface JobProviders extends SessionProviders {
  plan: ProviderPlan;
  key: string;
  /** The job's log (the `report` it was planned with), for other lines about its models. */
  log?: (line: string) => void;
}

/** This machine's onnxruntime backends, with whether each provider library is installed. */
export async function machineBackends(): Promise<BackendInfo[]> {
  const ort = await import('onnxruntime-node');
  return listBackends(ort.listSupportedBackends());
}

/**
 * Plans a job's providers from the user's `ddpoStudio.executionProvider` setting and `backends` (GPU first, CPU last);
 * `report` hears one line per opened model, e.g. `unet/model.onnx: execution provider: cpu (webgpu failed: ...)`, and for
 * a model on a GPU provider, after its first run, where its nodes ran (`unet/model.onnx on webgpu: WebGpu: 1676 nodes,
 * CPU: 65 nodes — on CPU: Slice (Slice), ...`).
 */
export function jobProviders(setting: ProviderSetting, backends: readonly BackendInfo[], report: (line: string) => void, platform: NodeJS.Platform = process.platform): JobProviders {
  const plan = chooseExecutionProviders(setting, platform, backends);
  const providers: SessionProviders = {
    candidates: plan.candidates,
    onOpened: (what, opened) => report(`${what}: ${describeProviderChoice(plan, opened)}`),
    onPlacement: (what, ep, placement) => report(`${what} on ${ep}: ${describePlacement(placement)}`),
  };
  return { ...providers, plan, key: providersKey(providers), log: report };
}
