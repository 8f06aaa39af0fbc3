// What the person sees of a fine-tuning run started from this window: the status bar while it goes, the tree's
// "running" until it ends, and after a worker crash a message saying why with a Resume that continues the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errors, infos, installFakeVscode, statusBars } from './fakeVscode';
import type { FineTuneProgress, ParamsOf } from '../../../src/protocol';
import { WorkerRequestError, type WorkerClient } from '../../../src/worker/client';

installFakeVscode();

type StartParams = ParamsOf<'startFineTune'>;
type Answer = (onProgress: (p: FineTuneProgress) => void) => Promise<unknown>;

// A worker whose startFineTune requests are answered, in turn, by `answers`; `calls` records each request's params.
function fakeWorker(answers: Answer[]): { worker: WorkerClient; calls: StartParams[] } {
  const calls: StartParams[] = [];
  const worker = {
    request: (_kind: string, params: StartParams, opts: { onProgress(p: FineTuneProgress): void }) => {
      calls.push(params);
      return answers.shift()!(opts.onProgress);
    },
  } as unknown as WorkerClient;
  return { worker, calls };
}

async function runManager(answers: Answer[]) {
  const { RunManager } = await import('../../../src/extension/studio/runs');
  const { worker, calls } = fakeWorker(answers);
  const output = { appendLine: () => undefined, show: () => undefined } as never;
  const runs = new RunManager(worker, output, () => undefined, { get: () => undefined, update: () => Promise.resolve() } as never);
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-runs-')), 'cats');
  fs.mkdirSync(dir);
  return { runs, calls, dir, statusBar: statusBars.at(-1)! };
}

test('while a run goes the status bar names its epoch counting from 1; once it ends the run is no longer running and the status bar goes', async () => {
  let finish!: () => void;
  const { runs, dir, statusBar } = await runManager([(onProgress) => {
    onProgress({ epoch: 0, numEpochs: 3, phase: 'sample', message: 'sampling batch 1/2', fraction: 0.1 });
    return new Promise((resolve) => (finish = () => resolve({ firstEpoch: 0, lastEpoch: 2, algorithm: 'ddpo' })));
  }]);
  const ended: string[] = [];
  runs.onDidChange((e) => e.ended && ended.push(e.ended));
  infos.shown.length = 0;
  const run = runs.start(dir, '/model', false);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(statusBar.visible, true);
  assert.equal(statusBar.text, '$(sync~spin) DDPO cats: epoch 1/3');
  assert.deepEqual([runs.isRunning(dir), runs.anyRunning], [true, true]);
  finish();
  await run;
  assert.deepEqual([runs.isRunning(dir), runs.anyRunning, statusBar.visible], [false, false, false], 'the tree shows the run done, not running');
  assert.deepEqual(ended, ['done']);
  assert.deepEqual(infos.shown, ['DDPO fine-tuning of cats finished.']);
  runs.dispose();
});

test('a run the worker crash interrupted says why, and its Resume continues that run from its checkpoint', async () => {
  const why = 'The DDPO Studio worker stopped unexpectedly (exited with code 134): out of memory while allocating 2 GB for the UNet.';
  const { runs, calls, dir } = await runManager([
    () => Promise.reject(new WorkerRequestError({ code: 'worker-crashed', message: `${why} It restarts on the next request.` })),
    () => Promise.resolve({ firstEpoch: 1, lastEpoch: 2, algorithm: 'diffusion-dpo' }),
  ]);
  errors.shown.length = 0;
  errors.answers.push('Resume');
  await runs.start(dir, '/model', false, 'diffusion-dpo');
  assert.deepEqual(errors.shown, [`Fine-tuning of cats was interrupted. ${why} Resume continues from the last checkpoint.`]);
  for (let i = 0; i < 50 && calls.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(calls.map((c) => [c.resume, c.algorithm]), [[false, 'diffusion-dpo'], [true, 'diffusion-dpo']]);
  runs.dispose();
});
