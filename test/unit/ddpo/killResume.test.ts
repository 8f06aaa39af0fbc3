import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listCheckpoints } from '../../../src/core/ddpo/checkpoint';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { readMetrics } from '../../../src/core/ddpo/metrics';
import { runDdpo } from '../../../src/core/ddpo/trainer';
import { brightness, reproducible, runToy, tempExperiment, toyConfig, toyPolicyFor } from './helpers';
import { needsTinyModel, tinyModelDir } from '../fixtures';
import { CRASH_AT_ENV } from '../../../src/core/crashPoint';

const ROOT = path.resolve(__dirname, '../../..');
const bright = async (imgs: { data: Uint8Array; width: number; height: number }[]) => imgs.map(brightness);

/** An experiment folder on the embedded model with a DDPO config small enough for sub-second epochs, saving every 2nd epoch. */
function tinyExperiment(): string {
  const dir = tempExperiment();
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({ schemaVersion: 1, name: 'kill', createdAt: '2026-01-01T00:00:00Z', baseModel: { id: 'embedded:tiny-shapes', path: tinyModelDir }, prompts: ['a cat', 'a dog'] }));
  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({
    num_epochs: 4, save_freq: 2, sample_num_steps: 3, sample_batch_size: 2, sample_num_batches_per_epoch: 2, train_batch_size: 2, latent_size: 16,
    eval_seeds: [0], train_learning_rate: 1e-2, train_clip_range: 1e-2, lora_rank: 2, lora_alpha: 2,
    // the tracker's buffers are part of what a checkpoint must carry for the resumed advantages to match
    per_prompt_stat_tracking: true, per_prompt_stat_tracking_buffer_size: 8, per_prompt_stat_tracking_min_count: 2,
  }));
  return dir;
}

/** Runs `ddpo train` as a child process; `crashAt` (a DDPO_CRASH_AT value) makes it SIGKILL itself there. */
function cli(dir: string, resume: boolean, crashAt?: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const env = { ...process.env, [CRASH_AT_ENV]: crashAt ?? '' };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train', '--experiment', dir, ...(resume ? ['--resume'] : [])], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

test('`ddpo train` killed before its first checkpoint, between checkpoints and while writing one, resumed each time, reproduces the uninterrupted metrics', { skip: needsTinyModel() }, async () => {
  const straight = tinyExperiment();
  const killed = tinyExperiment();
  const { metricsFile, checkpointsDir } = ddpoLayout(killed);
  const epochs = () => readMetrics(metricsFile).map((m) => m.epoch);
  const tempFolders = () => (fs.existsSync(checkpointsDir) ? fs.readdirSync(checkpointsDir).filter((n) => n.startsWith('.tmp-')) : []);
  const killedAt = async (resume: boolean, crashAt: string) => {
    const r = await cli(killed, resume, crashAt);
    assert.equal(r.signal, 'SIGKILL', `the run should have killed itself at ${crashAt}: exit ${r.code}\n${r.stderr}`);
  };
  const [whole] = await Promise.all([
    cli(straight, false),
    // 1. before the first checkpoint: epoch 0 trained, nothing written yet
    killedAt(false, 'epoch-trained:1'),
  ]);
  assert.equal(whole.code, 0, whole.stderr);
  assert.deepEqual([epochs(), listCheckpoints(checkpointsDir)], [[], []]);
  // 2. resumed with nothing saved, it starts over; killed after epoch 2's line, so checkpoint 1 is the newest
  await killedAt(true, 'epoch-logged:3');
  assert.deepEqual([epochs(), listCheckpoints(checkpointsDir)], [[0, 1, 2], [1]]);
  // 3. resumed from checkpoint 1; killed with checkpoint 3's files written to their temp folder, not yet renamed
  await killedAt(true, 'checkpoint-files-written:1');
  assert.deepEqual([epochs(), listCheckpoints(checkpointsDir)], [[0, 1, 2, 3], [1]]);
  assert.equal(tempFolders().length, 1, 'the half-written checkpoint is left in its temp folder');
  // 4. resumed from checkpoint 1 again, it finishes
  const resumed = await cli(killed, true);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual([epochs(), listCheckpoints(checkpointsDir), tempFolders()], [[0, 1, 2, 3], [1, 3], []]);
  assert.deepEqual(reproducible(metricsFile), reproducible(ddpoLayout(straight).metricsFile));
});

test('a kill between the metrics line and its checkpoint re-runs the epoch and replaces the orphan line', async () => {
  const config = toyConfig({ num_epochs: 4 });
  const straight = tempExperiment();
  await runToy(straight, config, bright);
  const dir = tempExperiment();
  const policy = toyPolicyFor(config);
  const save = policy.saveState.bind(policy);
  let saves = 0;
  policy.saveState = async () => { if (++saves === 3) throw new Error('killed before checkpoint 2'); return save(); };
  await assert.rejects(runToy(dir, config, bright, { policy }), /killed before checkpoint 2/);
  const layout = ddpoLayout(dir);
  assert.deepEqual(readMetrics(layout.metricsFile).map((m) => m.epoch), [0, 1, 2]); // epoch 2's line is the orphan
  assert.deepEqual(listCheckpoints(layout.checkpointsDir), [0, 1]);
  const resumed = await runToy(dir, config, bright, { resume: true });
  assert.equal(resumed.firstEpoch, 2);
  assert.deepEqual(readMetrics(layout.metricsFile).map((m) => m.epoch), [0, 1, 2, 3]);
  assert.deepEqual(reproducible(layout.metricsFile), reproducible(ddpoLayout(straight).metricsFile));
});

test('--resume with no checkpoint keeps metrics.jsonl and says how to start over; with no epoch recorded it starts at epoch 0', async () => {
  const config = toyConfig({ num_epochs: 4, save_freq: 10 });
  const dir = tempExperiment();
  const layout = ddpoLayout(dir);
  const stop = new AbortController();
  // stopped after epoch 1, before the first save (save_freq 10): two epochs of metrics, no checkpoint
  await assert.rejects(runDdpo({ config, layout, policy: toyPolicyFor(config), reward: bright, prompts: ['a cat', 'a dog'], signal: stop.signal, onEpoch: (m) => m.epoch === 1 && stop.abort() }));
  assert.equal(JSON.parse(fs.readFileSync(layout.statusFile, 'utf8')).state, 'stopped');
  assert.deepEqual(listCheckpoints(layout.checkpointsDir), []);
  const before = fs.readFileSync(layout.metricsFile);
  await assert.rejects(runToy(dir, config, bright, { resume: true }), (e: Error) => e.message ===
    `no checkpoint to resume from in ${layout.checkpointsDir} (the run stopped before its first save; save_freq sets how often it saves); ` +
    `${layout.metricsFile} (2 epochs) is kept. To start over from epoch 0, move or delete ${layout.runDir}, then start a new run (without --resume).`);
  assert.deepEqual(fs.readFileSync(layout.metricsFile), before);
  assert.deepEqual(readMetrics(layout.metricsFile).map((m) => m.epoch), [0, 1]);

  const empty = tempExperiment();
  fs.mkdirSync(ddpoLayout(empty).runDir);
  fs.writeFileSync(ddpoLayout(empty).statusFile, JSON.stringify({ state: 'stopped', epoch: 0 }));
  const fresh = await runToy(empty, toyConfig({ num_epochs: 2 }), bright, { resume: true });
  assert.equal(fresh.firstEpoch, 0);
  assert.deepEqual(readMetrics(ddpoLayout(empty).metricsFile).map((m) => m.epoch), [0, 1]);
});

test('resuming with a setting changed since the checkpoint warns, naming the setting; more epochs alone is no warning', async () => {
  const dir = tempExperiment();
  await runToy(dir, toyConfig({ num_epochs: 2, eval_seeds: [] }), bright);
  const resume = async (settings: Record<string, unknown>) => {
    const config = toyConfig({ eval_seeds: [], ...settings });
    const log: string[] = [];
    await runDdpo({ config, layout: ddpoLayout(dir), policy: toyPolicyFor(config), reward: bright, prompts: ['a cat', 'a dog'], resume: true, onLog: (l) => log.push(l) });
    return log.filter((l) => l.startsWith('warning:'));
  };
  assert.deepEqual(await resume({ num_epochs: 3 }), []);
  assert.deepEqual(await resume({ num_epochs: 4, train_learning_rate: 1e-3 }),
    ['warning: "train_learning_rate" changed from 0.003 to 0.001 since the checkpoint; the resumed run will not match an uninterrupted one']);
});
