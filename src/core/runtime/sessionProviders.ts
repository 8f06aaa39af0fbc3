/** The providers one job's sessions try, passed down to every place that opens a session, and who hears the outcome. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { placementFromProfile, type NodePlacement } from './placement';
import { profileFiles } from './profile';
import { DataType, emptyGraph, makeModel } from '../onnx/ir';
import { encodeModel } from '../onnx/proto';
import { openWithFallback, providerList, type ExecutionProvider, type OpenedSession, type ProviderOptions } from './providers';

/** Which providers a session tries, best first (CPU last), with per-provider options. */
export interface SessionProviders {
  candidates: readonly ExecutionProvider[];
  options?: ProviderOptions;
  /** Hears where each session opened (`what` names the model) and which providers failed before it. */
  onOpened?: (what: string, opened: Pick<OpenedSession, 'ep' | 'failures'>) => void;
  /**
   * Hears, after a session's first run, which provider ran each node: the nodes a GPU provider left to the CPU.
   * Recorded with onnxruntime's profiler during that one run, for sessions on the providers `placementFor` picks
   * (default: every provider but the CPU).
   */
  onPlacement?: (what: string, ep: ExecutionProvider, placement: NodePlacement) => void;
  placementFor?: (ep: ExecutionProvider) => boolean;
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
  const record = (ep: ExecutionProvider) => !!providers.onPlacement && (providers.placementFor ?? ((x) => x !== 'cpu'))(ep);
  const prefix = path.join(os.tmpdir(), `ddpo-placement-${process.pid}-${++profiles}`);
  try {
    opened = await openWithFallback(model, providers.candidates, (ep) => ({
      ...options, executionProviders: providerList(ep, providers.options), ...(record(ep) ? { enableProfiling: true, profileFilePrefix: prefix } : {}),
    }), create);
  } catch (e) {
    if (!last) throw e;
    if (providers.candidates.length === 1) throw last;
    throw new Error(`${(e as Error).message}\n  last error in full: ${last.message}`);
  }
  providers.onOpened?.(what, { ep: opened.ep, failures: opened.failures });
  if (record(opened.ep)) reportPlacementAfterFirstRun(opened.session, prefix, (p) => providers.onPlacement!(what, opened.ep, p));
  return opened;
}

let profiles = 0;

// Wraps session.run: the first run ends the profiler, whose Node events name each node's provider; later runs are
// plain. A session released before any run drops its profile unread.
function reportPlacementAfterFirstRun(session: ort.InferenceSession, prefix: string, report: (p: NodePlacement) => void): void {
  const run = session.run.bind(session) as (...a: unknown[]) => Promise<ort.InferenceSession.OnnxValueMapType>;
  const release = session.release.bind(session);
  let pending = true;
  const finish = (read: boolean) => {
    if (!pending) return;
    pending = false;
    (session as { run: unknown }).run = run;
    try {
      session.endProfiling();
      for (const file of profileFiles(prefix)) {
        const placement = read ? placementFromProfile(JSON.parse(fs.readFileSync(file, 'utf8'))) : undefined;
        fs.rmSync(file, { force: true });
        if (placement) report(placement);
      }
    } catch {
      // the placement report is a courtesy; a run that succeeded must not fail over it
    }
  };
  (session as { run: unknown }).run = async (...args: unknown[]) => {
    const out = await run(...args);
    finish(true);
    return out;
  };
  session.release = async () => {
    finish(false);
    return release();
  };
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
