import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerClient, WorkerRequestError, type CrashInfo } from '../../../src/worker/client';
import { sleep, type HandlerTable } from '../../../src/worker/jobs';
import { handlers as realHandlers } from '../../../src/worker/handlers';
import { memoryChannels } from './memoryChannel';

// Real handlers, except `ping` waits on demand so tests control reply order.
function handlersWithGate(gate: Promise<void>): HandlerTable {
  return { ...realHandlers, ping: { parse: () => ({}), run: async () => (await gate, { pid: 1, uptimeSeconds: 0 }) } };
}

test('the worker starts lazily on the first request, and replies reach the right caller', async () => {
  let open!: () => void;
  const { factory, started } = memoryChannels(handlersWithGate(new Promise((r) => (open = r))));
  const client = new WorkerClient(factory);
  assert.equal(started.length, 0);
  assert.equal(client.running, false);
  const slow = client.request('ping', {});
  const fast = client.request('selfTest', { steps: 2, delayMs: 0 });
  assert.equal(started.length, 1);
  assert.deepEqual(await fast, { completed: 2 });
  open();
  assert.deepEqual(await slow, { pid: 1, uptimeSeconds: 0 });
  client.dispose();
});

test('progress events arrive in order before the result', async () => {
  const { factory } = memoryChannels(realHandlers);
  const client = new WorkerClient(factory);
  const seen: number[] = [];
  const result = await client.request('selfTest', { steps: 4, delayMs: 0 }, { onProgress: (p) => seen.push(p.step) });
  assert.deepEqual(seen, [1, 2, 3, 4]);
  assert.equal(result.completed, 4);
  client.dispose();
});

test('cancelling a long job stops it in the worker and rejects with code "cancelled"', async () => {
  const { factory, started } = memoryChannels(realHandlers);
  const client = new WorkerClient(factory);
  const ctl = new AbortController();
  let steps = 0;
  const job = client.request('selfTest', { steps: 1000, delayMs: 5 }, { signal: ctl.signal, onProgress: () => ++steps === 2 && ctl.abort() });
  await assert.rejects(job, (e: WorkerRequestError) => e.code === 'cancelled');
  assert.equal(started[0].runner.activeJobs, 0, 'the job is no longer running in the worker');
  assert.ok(steps < 10);
  // The worker is still usable afterwards.
  assert.deepEqual(await client.request('selfTest', { steps: 1, delayMs: 0 }), { completed: 1 });
  client.dispose();
});

test('exclusive jobs run one after another; a cancelled queued job never starts', async () => {
  const { factory } = memoryChannels(realHandlers);
  const client = new WorkerClient(factory);
  const order: string[] = [];
  const ctl = new AbortController();
  const a = client.request('selfTest', { steps: 3, delayMs: 2 }, { onProgress: (p) => order.push(`a${p.step}`) });
  const b = client.request('selfTest', { steps: 1, delayMs: 0 }, { signal: ctl.signal, onProgress: () => order.push('b') });
  const c = client.request('selfTest', { steps: 2, delayMs: 0 }, { onProgress: (p) => order.push(`c${p.step}`) });
  ctl.abort();
  const bCancelled = assert.rejects(b, /Cancelled/);
  await a;
  await bCancelled;
  await c;
  assert.deepEqual(order, ['a1', 'a2', 'a3', 'c1', 'c2']);
  client.dispose();
});

test('a queued exclusive job cancelled while it waits ends at once, not when the job ahead of it ends', async () => {
  const { factory } = memoryChannels(realHandlers);
  const client = new WorkerClient(factory);
  const ctl = new AbortController();
  let aheadDone = false;
  const ahead = client.request('selfTest', { steps: 40, delayMs: 10 }).then((r) => { aheadDone = true; return r; });
  const queued = client.request('selfTest', { steps: 1, delayMs: 0 }, { signal: ctl.signal });
  setTimeout(() => ctl.abort(), 20);
  await assert.rejects(queued, /Cancelled/);
  assert.equal(aheadDone, false, 'the cancel answered while the job ahead still ran');
  assert.deepEqual(await ahead, { completed: 40 });
  assert.deepEqual(await client.request('selfTest', { steps: 1, delayMs: 0 }), { completed: 1 }, 'the queue goes on');
  client.dispose();
});

// A worker of another build (or a bug) answering in a shape the host does not read: refused by name, never read as if
// it fitted (a fine-tune "result" without its epochs once ended a run and then threw in the host).
test('a result or progress the host cannot read is refused by name, and the request fails instead of resolving', async () => {
  const logs: string[] = [];
  const odd: HandlerTable = {
    ...realHandlers,
    ping: { parse: () => ({}), run: async () => ({ pid: 'one' }) as unknown as { pid: number; uptimeSeconds: number } },
    selfTest: { parse: () => ({ steps: 1, delayMs: 0 }), run: async (_p, ctx) => { ctx.progress({ step: 'x' } as never); ctx.progress({ step: 1, total: 1 }); return { completed: 1 }; } },
  };
  const { factory } = memoryChannels(odd);
  const client = new WorkerClient(factory, { log: (l) => logs.push(l) });
  await assert.rejects(client.request('ping', {}), (e: WorkerRequestError) => e.code === 'failed' && /worker result of "ping": field "pid" should be number.*builds may not match/.test(e.message));
  const seen: unknown[] = [];
  assert.deepEqual(await client.request('selfTest', { steps: 1, delayMs: 0 }, { onProgress: (p) => seen.push(p) }), { completed: 1 });
  assert.deepEqual(seen, [{ step: 1, total: 1 }], 'only the progress it can read reaches the caller');
  assert.ok(logs.some((l) => /malformed progress message .*worker progress of "selfTest": field "step" should be number/.test(l)), logs.join('\n'));
  client.dispose();
});

test('bad params and unknown kinds come back as errors a user can read', async () => {
  const { factory } = memoryChannels(realHandlers);
  const client = new WorkerClient(factory);
  await assert.rejects(client.request('selfTest', { steps: -1, delayMs: 0 }), (e: WorkerRequestError) => e.code === 'invalid-request' && /steps must be/.test(e.message));
  await assert.rejects(client.request('nope' as 'ping', {}), (e: WorkerRequestError) => e.code === 'unknown-kind' && /does not know request "nope"/.test(e.message));
  await assert.rejects(client.request('status', { executionProvider: 'tpu' as 'cpu' }), /"executionProvider" must be one of .*got "tpu"/);
  client.dispose();
});

test('a crash fails pending requests with the last error, is reported once, and the next request restarts the worker', async () => {
  const { factory, started } = memoryChannels(realHandlers);
  const crashes: CrashInfo[] = [];
  const client = new WorkerClient(factory, { onCrash: (c) => crashes.push(c) });
  const pending = client.request('selfTest', { steps: 1000, delayMs: 5 });
  await client.request('ping', {});
  started[0].crash({ code: 134 }, 'out of memory while allocating 2 GB for the UNet');
  await assert.rejects(pending, (e: WorkerRequestError) => e.code === 'worker-crashed' && /exited with code 134/.test(e.message) && /out of memory/.test(e.message));
  assert.equal(crashes.length, 1);
  assert.equal(crashes[0].lastError, 'out of memory while allocating 2 GB for the UNet');
  assert.equal(client.running, false);
  assert.ok((await client.request('ping', {})).pid > 0);
  assert.equal(started.length, 2, 'a fresh worker was started');
  client.dispose();
});

test('without a fatal message the crash reason is the last stderr line', async () => {
  const { factory, started } = memoryChannels(realHandlers);
  const crashes: CrashInfo[] = [];
  const client = new WorkerClient(factory, { onCrash: (c) => crashes.push(c) });
  const pending = client.request('selfTest', { steps: 1000, delayMs: 5 });
  await client.request('ping', {});
  started[0].crash({ code: null, signal: 'SIGSEGV', stderrTail: 'warming up\nSegmentation fault in libonnxruntime\n' });
  await assert.rejects(pending, /killed by SIGSEGV.*Segmentation fault in libonnxruntime/);
  assert.equal(crashes[0].lastError, 'Segmentation fault in libonnxruntime');
  client.dispose();
});

test('dispose stops the worker without reporting a crash; later requests are refused', async () => {
  const { factory, started } = memoryChannels(realHandlers);
  let crashed = false;
  const client = new WorkerClient(factory, { onCrash: () => (crashed = true) });
  const pending = client.request('selfTest', { steps: 1000, delayMs: 5 });
  client.dispose();
  await assert.rejects(pending, /stopped/);
  assert.equal(started[0].killed, true);
  assert.equal(crashed, false);
  await assert.rejects(client.request('ping', {}), /shutting down/);
});

test('sleep rejects promptly when aborted', async () => {
  const ctl = new AbortController();
  const p = sleep(60_000, ctl.signal);
  ctl.abort();
  await assert.rejects(p, /Cancelled/);
});

// The fine-tuning and reward loops stop through signal.throwIfAborted(), which throws an AbortError, not a
// CancelledError: Stop must still answer "cancelled", or the studio reports a stopped run as failed and offers no Resume.
test('a job that stops by throwIfAborted on Cancel is answered as cancelled, not as failed', async () => {
  const untilAborted: HandlerTable = {
    ...realHandlers,
    ping: { parse: () => ({}), run: async (_p, ctx) => { await new Promise((r) => ctx.signal.addEventListener('abort', r)); ctx.signal.throwIfAborted(); return { pid: 1, uptimeSeconds: 0 }; } },
  };
  const { factory } = memoryChannels(untilAborted);
  const client = new WorkerClient(factory);
  const ctl = new AbortController();
  const job = client.request('ping', {}, { signal: ctl.signal });
  setTimeout(() => ctl.abort(), 10);
  await assert.rejects(job, (e: WorkerRequestError) => e.code === 'cancelled' && e.message === 'Cancelled.');
  client.dispose();
});

// Each crash is told with its own reason: the fatal message of an earlier worker must not stand in for a later one's.
test('a second crash is reported with its own reason, not the first worker\'s', async () => {
  const { factory, started } = memoryChannels(realHandlers);
  const crashes: CrashInfo[] = [];
  const client = new WorkerClient(factory, { onCrash: (c) => crashes.push(c) });
  const first = client.request('selfTest', { steps: 1000, delayMs: 5 });
  await client.request('ping', {});
  started[0].crash({ code: 134 }, 'out of memory while allocating 2 GB for the UNet');
  await assert.rejects(first, /out of memory/);
  const second = client.request('selfTest', { steps: 1000, delayMs: 5 });
  await client.request('ping', {});
  started[1].crash({ code: null, signal: 'SIGSEGV', stderrTail: 'Segmentation fault in libonnxruntime\n' });
  await assert.rejects(second, (e: WorkerRequestError) => /Segmentation fault/.test(e.message) && !/out of memory/.test(e.message));
  assert.deepEqual(crashes.map((c) => c.lastError), ['out of memory while allocating 2 GB for the UNet', 'Segmentation fault in libonnxruntime']);
  client.dispose();
});
