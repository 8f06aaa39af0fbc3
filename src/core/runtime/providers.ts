/** Execution-provider choice with fallback: which providers to try, opening a session on the first that works. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { EXECUTION_PROVIDER_SETTINGS, type ExecutionProviderSetting } from '../../protocol';

/** What the user may ask for; `auto` picks the best provider this platform and onnxruntime build offer. */
export type ProviderSetting = ExecutionProviderSetting;
import { ortBinDir } from './cudaLibraries';

/** Execution providers a user may ask for; availability depends on the onnxruntime-node build. */
export type ExecutionProvider = Exclude<ProviderSetting, 'auto'>;

/** A `--ep` value checked: auto or one provider. */
export function parseProviderSetting(text: string, flag = '--ep'): ProviderSetting {
  const all: readonly string[] = EXECUTION_PROVIDER_SETTINGS;
  if (!all.includes(text)) throw new Error(`${flag} ${text}: use ${all.slice(0, -1).join(', ')} or ${all[all.length - 1]}`);
  return text as ProviderSetting;
}

/** A backend as onnxruntime-node's `listSupportedBackends()` reports it, plus whether its library is present. */
export interface BackendInfo {
  name: string;
  bundled: boolean;
  /** For non-bundled backends (CUDA, TensorRT): whether its provider library was found next to the binding. */
  installed?: boolean;
}

/** The providers to try in order (CPU always last) and why others were left out. */
export interface ProviderPlan {
  candidates: ExecutionProvider[];
  skipped: { ep: ExecutionProvider; reason: string }[];
}

/**
 * Preferred GPU providers per platform, best first; CPU is appended by the planner. CUDA leads where it can exist: on
 * an NVIDIA GPU its kernels use the tensor cores that DirectML and WebGPU leave idle; where its provider library is
 * not installed the planner skips it.
 */
export function autoOrder(platform: NodeJS.Platform): ExecutionProvider[] {
  if (platform === 'win32') return ['cuda', 'dml', 'webgpu'];
  if (platform === 'darwin') return ['coreml', 'webgpu'];
  return ['cuda', 'webgpu'];
}

function unavailable(ep: ExecutionProvider, backends: readonly BackendInfo[], platform: NodeJS.Platform): string | undefined {
  if (ep === 'cpu') return undefined;
  const b = backends.find((x) => x.name === ep);
  if (!b) return `this onnxruntime-node build has no '${ep}' backend`;
  if (!b.bundled && !b.installed) {
    if (ep !== 'cuda') return `the '${ep}' provider library is not installed`;
    return platform === 'linux' ? "the CUDA provider library is not installed (run 'ddpo install-cuda')" : 'the CUDA provider library (onnxruntime_providers_cuda) is not installed beside onnxruntime-node';
  }
  return undefined;
}

/**
 * Orders the providers to try for `setting` on `platform`: `auto` walks the platform's GPU preference list
 * (Linux cuda→webgpu, Windows cuda→dml→webgpu, macOS coreml→webgpu), an explicit choice tries just that one;
 * CPU is always the last resort. Unavailable providers are skipped with the reason.
 */
export function chooseExecutionProviders(setting: ProviderSetting, platform: NodeJS.Platform, backends: readonly BackendInfo[]): ProviderPlan {
  const wanted: ExecutionProvider[] = setting === 'auto' ? autoOrder(platform) : setting === 'cpu' ? [] : [setting];
  const plan: ProviderPlan = { candidates: [], skipped: [] };
  for (const ep of wanted) {
    const why = unavailable(ep, backends, platform);
    if (why) plan.skipped.push({ ep, reason: why });
    else plan.candidates.push(ep);
  }
  plan.candidates.push('cpu');
  return plan;
}

/** This machine's backends, with `installed` set from the provider libraries present in `binDir`. */
export function listBackends(listed: readonly { name: string; bundled: boolean }[], binDir = ortBinDir()): BackendInfo[] {
  const lib = (name: string) => (process.platform === 'win32' ? `onnxruntime_providers_${name}.dll` : `libonnxruntime_providers_${name}.so`);
  return listed.map((b) => ({ ...b, installed: b.bundled || (!!binDir && fs.existsSync(path.join(binDir, lib(b.name)))) }));
}

/** A session opened on the first provider that initialised, and the failures before it. */
export interface OpenedSession {
  session: ort.InferenceSession;
  ep: ExecutionProvider;
  failures: { ep: ExecutionProvider; error: string }[];
}

type Create = (model: string | Uint8Array, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>;

/**
 * Tries each candidate in turn (`[ep, 'cpu']`, so ORT may still place unsupported nodes on the CPU) and keeps the
 * first session that opens; `options(ep)` gives per-provider options (e.g. gpu-buffer outputs only on GPUs).
 */
export async function openWithFallback(
  model: string | Uint8Array, candidates: readonly ExecutionProvider[],
  options: (ep: ExecutionProvider) => ort.InferenceSession.SessionOptions, create?: Create,
): Promise<OpenedSession> {
  const make: Create = create ?? (async (m, o) => (await import('onnxruntime-node')).InferenceSession.create(m as string, o));
  const failures: OpenedSession['failures'] = [];
  for (const ep of candidates) {
    try {
      const o = options(ep);
      const session = await make(model, { ...o, executionProviders: o.executionProviders ?? providerList(ep) });
      return { session, ep, failures };
    } catch (e) {
      failures.push({ ep, error: firstLine((e as Error).message) });
    }
  }
  const what = typeof model === 'string' ? model : 'the in-memory model';
  throw new Error(`Could not open ${what} on any execution provider:\n${failures.map((f) => `  ${f.ep}: ${f.error}`).join('\n')}`);
}

/** Provider-specific options, e.g. `{ webgpu: { validationMode: 'disabled', preferredLayout: 'NHWC' } }`. */
export type ProviderOptions = Partial<Record<ExecutionProvider, Record<string, unknown>>>;

/** `executionProviders` for a session on `ep` with CPU fallback for the nodes it lacks, with `ep`'s options if any. */
export function providerList(ep: ExecutionProvider, options: ProviderOptions = {}): ort.InferenceSession.SessionOptions['executionProviders'] {
  if (ep === 'cpu') return ['cpu'];
  const extra = options[ep];
  return [extra ? ({ name: ep, ...extra } as ort.InferenceSession.ExecutionProviderConfig) : ep, 'cpu'];
}

/** Parses `key=value,key=value` provider options (`--webgpu validationMode=disabled,preferredLayout=NHWC`). */
export function parseProviderOptions(text: string, flag: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const part of text.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([A-Za-z][\w.]*)=(.*)$/.exec(part);
    if (!m) throw new Error(`${flag}: '${part}' is not key=value (e.g. ${flag} validationMode=disabled,preferredLayout=NHWC)`);
    out[m[1]] = m[2] === 'true' ? true : m[2] === 'false' ? false : m[2];
  }
  return out;
}

/** One line a user can read: which provider ran, and why the preferred ones did not. */
export function describeProviderChoice(plan: ProviderPlan, opened: Pick<OpenedSession, 'ep' | 'failures'>): string {
  const notes = [...plan.skipped.map((s) => `${s.ep} skipped: ${s.reason}`), ...opened.failures.map((f) => `${f.ep} failed: ${f.error}`)];
  return `execution provider: ${opened.ep}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

function firstLine(s: string): string {
  // ORT errors start with a source path; the reason is after the last "] " or at the end.
  const line = s.split('\n')[0];
  const m = /(?:was false\. |\] )([^\]]+)$/.exec(line);
  return (m ? m[1] : line).trim().slice(0, 300);
}
