// The studio's commands on an experiment. Start Over and Delete Experiment remove what a job may be writing: they take
// the experiment's run lock first, so a run under way anywhere (another window, a `ddpo train` terminal) refuses them,
// naming itself, and nothing is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { installFakeVscode, Uri, warnings, workspace } from './fakeVscode';
import { ExperimentStore } from '../../../src/core/experiment/store';
import { EMBEDDED_MODEL_ID } from '../../../src/core/experiment/modelDir';
import { RUN_LOCK_FILE } from '../../../src/core/experiment/runLock';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import type { Services } from '../../../src/extension/services';

installFakeVscode();

async function setup(): Promise<{ dir: string; services: Services; started: string[] }> {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-delete-'));
  const store = new ExperimentStore(ws);
  await store.create('cats', { baseModel: { id: EMBEDDED_MODEL_ID }, prompts: ['a cat'] });
  workspace.workspaceFolders = [{ uri: Uri.file(ws) }];
  const dir = store.dirOf('cats');
  const l = ddpoLayout(dir);
  fs.mkdirSync(path.join(l.checkpointsDir, 'epoch-000000'), { recursive: true });
  fs.writeFileSync(l.metricsFile, '{"epoch":0}\n');
  fs.writeFileSync(ddpoLayout(dir).configFile, '{}');
  const started: string[] = [];
  const services = {
    context: { extensionUri: Uri.file(path.resolve(__dirname, '../../..')), extensionPath: path.resolve(__dirname, '../../..'), workspaceState: { get: () => undefined, update: () => Promise.resolve() } },
    output: { appendLine: () => undefined },
    runs: { isRunning: () => false, start: async (d: string) => void started.push(d), onDidChange: () => ({ dispose: () => undefined }), algorithmOf: () => undefined, progressOf: () => undefined },
  } as unknown as Services;
  return { dir, services, started };
}

// A run in a terminal: its lock names a live process (this one) with another acquisition's token.
const holdLock = (dir: string) => fs.writeFileSync(path.join(dir, RUN_LOCK_FILE), JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString(), what: 'ddpo train', token: 'other' }) + '\n');

test('Start Over and Delete Experiment refuse while another process runs the experiment, and delete once it is free', async () => {
  const { startFineTune, deleteExperiment } = await import('../../../src/extension/commands/studio');
  const { dir, services, started } = await setup();
  const l = ddpoLayout(dir);
  holdLock(dir);
  warnings.shown.length = 0;
  warnings.answers.push('Start Over');
  await startFineTune(services, 'cats', false, 'ddpo');
  assert.ok(fs.existsSync(l.metricsFile) && fs.existsSync(l.checkpointsDir), 'the run under way keeps its files');
  assert.deepEqual(started, [], 'nothing started');
  assert.match(warnings.shown.at(-1)!, /^Nothing was deleted: .* is in use by ddpo train \(this process, pid \d+/);
  warnings.answers.push('Delete');
  await deleteExperiment(services, 'cats');
  assert.ok(fs.existsSync(path.join(dir, 'experiment.json')));
  assert.match(warnings.shown.at(-1)!, /^Nothing was deleted: .* in use by ddpo train/);
  // the run ended: both go ahead, and the lock they took is gone with what they removed
  fs.rmSync(path.join(dir, RUN_LOCK_FILE));
  warnings.answers.push('Start Over');
  await startFineTune(services, 'cats', false, 'ddpo');
  assert.ok(!fs.existsSync(l.metricsFile));
  assert.deepEqual(started, [dir]);
  assert.ok(!fs.existsSync(path.join(dir, RUN_LOCK_FILE)));
  warnings.answers.push('Delete');
  await deleteExperiment(services, 'cats');
  assert.ok(!fs.existsSync(dir));
});

test('Export LoRA on an experiment without a checkpoint says to fine-tune first, before asking anything', async () => {
  const { exportLora } = await import('../../../src/extension/commands/studio');
  const { dir, services } = await setup();
  fs.rmSync(ddpoLayout(dir).checkpointsDir, { recursive: true });
  warnings.shown.length = 0;
  let asked = 0;
  (services as unknown as { worker: unknown }).worker = { request: () => { asked++; return Promise.reject(new Error('no worker here')); } };
  await exportLora(services, 'cats');
  assert.deepEqual(warnings.shown, ['cats has no checkpoint yet: fine-tune it first (Start Fine-Tuning).']);
  assert.equal(asked, 0);
});

test('the compare commands on an experiment without a checkpoint say which run has none, in the words Export LoRA uses', async () => {
  const { compareModels, compareWithBase } = await import('../../../src/extension/commands/compare');
  const { dir, services } = await setup();
  // a DDPO run that stopped before its first save: metrics, no checkpoint
  fs.rmSync(ddpoLayout(dir).checkpointsDir, { recursive: true });
  warnings.shown.length = 0;
  await compareModels(services, 'cats');
  await compareWithBase(services, 'cats');
  assert.deepEqual(warnings.shown, [
    'cats has no checkpoint yet: fine-tune it first (Start Fine-Tuning).',
    'cats\'s DDPO run has no checkpoint yet: fine-tune it first (Start Fine-Tuning).',
  ]);
});
