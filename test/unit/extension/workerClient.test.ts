// The extension's worker is a real forked process. When it dies the person is told once, with the reason, that it
// restarts on the next request; while a fine-tuning runs, the run's own message ("interrupted", with Resume) is the
// only one. Here the worker script dies at start, as one whose native library fails to load does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errors, installFakeVscode } from './fakeVscode';
import type { WorkerRequestError } from '../../../src/worker/client';

installFakeVscode();

test('a worker crash is told once with its reason outside a run, not at all during one, and each next request starts one fresh worker', async () => {
  const { createWorkerClient } = await import('../../../src/extension/workerClient');
  const ext = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-ext-'));
  fs.mkdirSync(path.join(ext, 'dist'));
  fs.writeFileSync(path.join(ext, 'dist', 'worker.js'), "process.stderr.write('onnxruntime failed to load: libcuda.so.1 is missing\\n');\nprocess.exit(3);\n");
  const lines: string[] = [];
  const output = { append: (t: string) => lines.push(t), appendLine: (l: string) => lines.push(l), show: () => undefined };
  const context = { extensionPath: ext, subscriptions: [] as { dispose(): void }[] };
  let running = false;
  const client = createWorkerClient(context as never, output as never, () => running);
  const crashed = (e: WorkerRequestError) => e.code === 'worker-crashed' && /exited with code 3\): onnxruntime failed to load/.test(e.message);
  try {
    errors.shown.length = 0;
    await assert.rejects(client.request('ping', {}), crashed);
    assert.deepEqual(errors.shown, ['DDPO Studio worker crashed: onnxruntime failed to load: libcuda.so.1 is missing. It will restart on the next request.']);
    running = true;
    await assert.rejects(client.request('ping', {}), crashed);
    assert.equal(errors.shown.length, 1, 'during a run only the run tells of the crash');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(lines.filter((l) => l.startsWith('[host] starting worker')).length, 2, 'one worker per request, none started by the crash itself');
    assert.equal(lines.filter((l) => l.startsWith('[host] worker stopped (code 3, signal null): onnxruntime failed to load')).length, 2, lines.join('\n'));
  } finally {
    for (const d of context.subscriptions) d.dispose();
  }
});
