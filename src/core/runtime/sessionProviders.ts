/** The providers one job's sessions try, passed down to every place that opens a session, and who hears the outcome. */
import type * as ort from 'onnxruntime-node';
import type { ExecutionProvider } from '../models/ortModel';
import { DataType, emptyGraph, makeModel } from '../onnx/ir';
import { encodeModel } from '../onnx/proto';
import { openWithFallback, providerList, type OpenedSession, type ProviderOptions } from './providers';

/** Which providers a session tries, best first (CPU last), with per-provider options. */
export interface SessionProviders {
  candidates: readonly ExecutionProvider[];
  options?: ProviderOptions;
  /** Hears where each session opened (`what` names the model) and which providers failed before it. */
  onOpened?: (what: string, opened: Pick<OpenedSession, 'ep' | 'failures'>) => void;
}

/** CPU only: the default for library callers, the demo and tests. */
export const CPU_ONLY: SessionProviders = { candidates: ['cpu'] };

/**
 * Opens `model` (a path or ONNX bytes) on the first of `providers.candidates` that initialises, with `options` for
 * every attempt, then tells `providers.onOpened`. Throws listing every provider's error when none opens it.
 */
export async function openSession(
  model: string | Uint8Array, what: string, providers: SessionProviders = CPU_ONLY, options: ort.InferenceSession.SessionOptions = {},
): Promise<OpenedSession> {
  // The fallback summary keeps one line per provider; the last error is kept whole (it names the failing node).
  let last: Error | undefined;
  const create = async (m: string | Uint8Array, o: ort.InferenceSession.SessionOptions) => {
    try {
      return await (await import('onnxruntime-node')).InferenceSession.create(m as string, o);
    } catch (e) {
      last = e as Error;
      throw e;
    }
  };
  let opened: OpenedSession;
  try {
    opened = await openWithFallback(model, providers.candidates, (ep) => ({ ...options, executionProviders: providerList(ep, providers.options) }), create);
  } catch (e) {
    if (!last) throw e;
    if (providers.candidates.length === 1) throw last;
    throw new Error(`${(e as Error).message}\n  last error in full: ${last.message}`);
  }
  providers.onOpened?.(what, { ep: opened.ep, failures: opened.failures });
  return opened;
}

/** A stable key for a provider choice, so sessions opened for one choice are not reused for another. */
export function providersKey(providers: SessionProviders): string {
  return `${providers.candidates.join('>')}${providers.options ? ` ${JSON.stringify(providers.options)}` : ''}`;
}

/**
 * The provider that really opens a model with these providers: a provider may be listed yet fail to start (WebGPU
 * without an adapter). Opens a one-node model quietly (no `onOpened` report) and releases it.
 */
export async function probeProvider(providers: SessionProviders): Promise<Pick<OpenedSession, 'ep' | 'failures'>> {
  const g = emptyGraph('probe');
  g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: [1] });
  g.outputs.push({ name: 'y', elemType: DataType.FLOAT, shape: [1] });
  g.nodes.push({ name: 'id', opType: 'Identity', domain: '', inputs: ['x'], outputs: ['y'], attrs: {} });
  const opened = await openSession(encodeModel(makeModel(g)), 'probe', { ...providers, onOpened: undefined });
  await opened.session.release();
  return { ep: opened.ep, failures: opened.failures };
}
