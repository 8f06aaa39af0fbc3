/** The worker's job loop: runs requests through their handlers, streams progress, honours cancellation. */
import type { ErrorInfo, HostToWorker, ParamsOf, ProgressOf, ResultOf, WorkerRequestKind, WorkerToHost } from '../protocol';
import { assertNever, parseHostToWorker } from '../protocol';

/** What a running job can use. */
export interface JobContext<K extends WorkerRequestKind> {
  /** Aborted when the host cancels this request (or the worker shuts down). */
  signal: AbortSignal;
  progress(p: ProgressOf<K>): void;
  /** A line for the "DDPO Studio" output channel. */
  log(line: string): void;
}

/** How the worker serves one request kind. */
export interface JobHandler<K extends WorkerRequestKind> {
  /** Exclusive jobs (long, heavy ones) run one at a time in arrival order; others run at once. */
  exclusive?: boolean;
  /** Checks untrusted params; throws an Error whose message tells the caller what is wrong. */
  parse(params: unknown): ParamsOf<K>;
  run(params: ParamsOf<K>, ctx: JobContext<K>): Promise<ResultOf<K>>;
}

/** One handler per request kind; the compiler flags a kind without one. */
export type HandlerTable = { [K in WorkerRequestKind]: JobHandler<K> };

/** Thrown by a handler that stops because its signal was aborted. */
export class CancelledError extends Error {
  constructor(message = 'Cancelled.') {
    super(message);
    this.name = 'CancelledError';
  }
}

/** Resolves after `ms`, or rejects with CancelledError as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new CancelledError());
    const onAbort = () => {
      clearTimeout(t);
      reject(new CancelledError());
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Turns any thrown value into the ErrorInfo sent to the host. */
export function toErrorInfo(e: unknown, signal?: AbortSignal): ErrorInfo {
  if (e instanceof CancelledError || (signal?.aborted && e instanceof Error && e.name === 'AbortError')) return { code: 'cancelled', message: 'Cancelled.' };
  if (e instanceof Error) return { code: 'failed', message: e.message, detail: e.stack };
  return { code: 'failed', message: String(e) };
}

/** Dispatches host messages to handlers and sends replies/progress back through `send`. */
export class JobRunner {
  private readonly running = new Map<number, AbortController>();
  private exclusiveTail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly handlers: HandlerTable,
    private readonly send: (msg: WorkerToHost) => void,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** Handles one raw inbound message (validated here). */
  handle(raw: unknown): void {
    let msg: HostToWorker;
    try {
      msg = parseHostToWorker(raw);
    } catch (e) {
      const id = typeof (raw as { id?: unknown })?.id === 'number' ? (raw as { id: number }).id : -1;
      this.send({ type: 'reply', id, ok: false, error: { code: 'invalid-request', message: (e as Error).message } });
      return;
    }
    switch (msg.type) {
      case 'request':
        void this.start(msg.id, msg.kind, msg.params);
        return;
      case 'cancel':
        this.running.get(msg.id)?.abort();
        return;
      default:
        assertNever(msg);
    }
  }

  /** Aborts every running job (used when the host goes away). */
  cancelAll(): void {
    for (const c of this.running.values()) c.abort();
  }

  /** Number of jobs started and not yet replied to. */
  get activeJobs(): number {
    return this.running.size;
  }

  private async start(id: number, kind: WorkerRequestKind, rawParams: unknown): Promise<void> {
    const handler = Object.prototype.hasOwnProperty.call(this.handlers, kind) ? (this.handlers[kind] as JobHandler<WorkerRequestKind>) : undefined;
    if (!handler) {
      this.send({ type: 'reply', id, ok: false, error: { code: 'unknown-kind', message: `The worker does not know request "${kind}"; the extension and worker builds may not match — rebuild or reinstall.` } });
      return;
    }
    let params: ParamsOf<WorkerRequestKind>;
    try {
      params = handler.parse(rawParams);
    } catch (e) {
      this.send({ type: 'reply', id, ok: false, error: { code: 'invalid-request', message: `Invalid "${kind}" request: ${(e as Error).message}` } });
      return;
    }
    const controller = new AbortController();
    this.running.set(id, controller);
    const ctx: JobContext<WorkerRequestKind> = {
      signal: controller.signal,
      progress: (p) => {
        if (!controller.signal.aborted) this.send({ type: 'progress', id, progress: p });
      },
      log: (line) => this.log(`[${kind} #${id}] ${line}`),
    };
    const run = () => (controller.signal.aborted ? Promise.reject(new CancelledError()) : handler.run(params, ctx));
    let job: Promise<unknown>;
    if (handler.exclusive) {
      // a job cancelled while it waits its turn ends at once (its Stop or Cancel answers now, not when the job ahead
      // ends); the next job still waits for the one ahead
      const ahead = this.exclusiveTail;
      const cancelled = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(new CancelledError()), { once: true }));
      job = Promise.race([ahead, cancelled]).then(run);
      this.exclusiveTail = Promise.allSettled([ahead, job]).then(() => undefined);
    } else job = run();
    try {
      const result = await job;
      // A job that finished despite a late cancel still reports its result: its work is done.
      this.send({ type: 'reply', id, ok: true, result });
    } catch (e) {
      const error = toErrorInfo(e, controller.signal);
      if (error.code === 'failed') this.log(`[${kind} #${id}] failed: ${error.detail ?? error.message}`);
      this.send({ type: 'reply', id, ok: false, error });
    } finally {
      this.running.delete(id);
    }
  }
}
