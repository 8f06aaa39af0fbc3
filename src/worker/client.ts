/** Host-side worker client: starts the worker lazily, correlates replies, forwards progress, survives crashes. */
import type { ErrorInfo, HostToWorker, ParamsOf, ProgressOf, ResultOf, WorkerRequestKind } from '../protocol';
import { assertNever, parseJobProgress, parseJobResult, parseWorkerToHost } from '../protocol';

/** How the worker process ended. */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** Last lines the process wrote to stderr, if captured. */
  stderrTail?: string;
}

/** A connection to one worker process (real: child_process IPC; tests: in memory). */
export interface WorkerChannel {
  send(msg: HostToWorker): void;
  onMessage(cb: (raw: unknown) => void): void;
  onExit(cb: (info: ExitInfo) => void): void;
  kill(): void;
}

/** Starts a new worker and returns its channel. */
export type ChannelFactory = () => WorkerChannel;

/** What the client tells its owner when the worker died on its own. */
export interface CrashInfo {
  exit: ExitInfo;
  /** One line for the user: the last error the worker reported, or how it exited. */
  lastError: string;
}

/** A request that the worker answered with an error (or that died with the worker). */
export class WorkerRequestError extends Error {
  readonly code: ErrorInfo['code'];
  readonly detail?: string;
  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = 'WorkerRequestError';
    this.code = info.code;
    this.detail = info.detail;
  }
}

/** Options for one request. */
export interface RequestOptions<K extends WorkerRequestKind> {
  signal?: AbortSignal;
  onProgress?(p: ProgressOf<K>): void;
}

interface Pending {
  kind: WorkerRequestKind;
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?(p: unknown): void;
  cleanup(): void;
}

/** Sends typed requests to the worker; restarts it on the next request after a crash. */
export class WorkerClient {
  private channel: WorkerChannel | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private lastFatal: string | undefined;
  private disposed = false;

  constructor(
    private readonly factory: ChannelFactory,
    private readonly hooks: { onCrash?(info: CrashInfo): void; onStart?(): void; log?(line: string): void } = {},
  ) {}

  /** True while a worker process is running. */
  get running(): boolean {
    return this.channel !== undefined;
  }

  /** Sends one request; resolves with its result or rejects with WorkerRequestError. */
  request<K extends WorkerRequestKind>(kind: K, params: ParamsOf<K>, opts: RequestOptions<K> = {}): Promise<ResultOf<K>> {
    if (this.disposed) return Promise.reject(new WorkerRequestError({ code: 'failed', message: 'DDPO Studio is shutting down; the worker is stopped.' }));
    if (opts.signal?.aborted) return Promise.reject(new WorkerRequestError({ code: 'cancelled', message: 'Cancelled.' }));
    const channel = this.ensureChannel();
    const id = this.nextId++;
    return new Promise<ResultOf<K>>((resolve, reject) => {
      const onAbort = () => this.channel === channel && channel.send({ type: 'cancel', id });
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        kind,
        resolve: resolve as (v: unknown) => void,
        reject,
        onProgress: opts.onProgress as ((p: unknown) => void) | undefined,
        cleanup: () => opts.signal?.removeEventListener('abort', onAbort),
      });
      channel.send({ type: 'request', id, kind, params });
    });
  }

  /** Stops the worker; pending requests fail. */
  dispose(): void {
    this.disposed = true;
    const ch = this.channel;
    this.channel = undefined;
    this.failAll({ code: 'failed', message: 'The worker was stopped.' });
    ch?.kill();
  }

  /** Stops the current worker (if any) without crashing it; the next request starts a fresh one. */
  restart(): void {
    const ch = this.channel;
    this.channel = undefined;
    this.failAll({ code: 'cancelled', message: 'The worker was restarted.' });
    ch?.kill();
  }

  private ensureChannel(): WorkerChannel {
    if (this.channel) return this.channel;
    const ch = this.factory();
    this.channel = ch;
    this.lastFatal = undefined;
    ch.onMessage((raw) => this.channel === ch && this.onMessage(raw));
    ch.onExit((exit) => this.channel === ch && this.onExit(exit));
    this.hooks.onStart?.();
    return ch;
  }

  private onMessage(raw: unknown): void {
    let msg;
    try {
      msg = parseWorkerToHost(raw);
    } catch (e) {
      this.hooks.log?.(`Ignored a malformed message from the worker: ${(e as Error).message}`);
      return;
    }
    switch (msg.type) {
      case 'hello':
        return;
      case 'progress': {
        const p = this.pending.get(msg.id);
        if (!p?.onProgress) return;
        let progress;
        try {
          progress = parseJobProgress(p.kind, msg.progress);
        } catch (e) {
          this.hooks.log?.(`Ignored a malformed progress message from the worker: ${(e as Error).message}`);
          return;
        }
        p.onProgress(progress);
        return;
      }
      case 'fatal':
        this.lastFatal = msg.error.message;
        return;
      case 'reply': {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        p.cleanup();
        if (!msg.ok) return p.reject(new WorkerRequestError(msg.error));
        try {
          p.resolve(parseJobResult(p.kind, msg.result));
        } catch (e) {
          p.reject(new WorkerRequestError({ code: 'failed', message: `The worker's answer is not one this version of DDPO Studio reads (${(e as Error).message}); the extension and worker builds may not match: rebuild or reinstall.` }));
        }
        return;
      }
      default:
        assertNever(msg, 'worker message');
    }
  }

  private onExit(exit: ExitInfo): void {
    this.channel = undefined;
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    const said = this.lastFatal ?? lastLine(exit.stderrTail);
    const lastError = said ?? `the worker ${how}`;
    this.failAll({ code: 'worker-crashed', message: `The DDPO Studio worker stopped unexpectedly (${how})${said ? `: ${said}` : ''}. It restarts on the next request.` });
    this.hooks.onCrash?.({ exit, lastError });
  }

  private failAll(info: ErrorInfo): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      p.cleanup();
      p.reject(new WorkerRequestError(info));
    }
  }
}

function lastLine(text: string | undefined): string | undefined {
  const lines = (text ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.length ? lines[lines.length - 1] : undefined;
}
