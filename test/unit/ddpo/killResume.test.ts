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
import { REFERENCE_SD, SKIP_NO_FIXTURES } from '../train/fixture';

const ROOT = path.resolve(__dirname, '../../..');
const bright = async (imgs: { data: Uint8Array; width: number; height: number }[]) => imgs.map(brightness);

/** An experiment folder on the reference UNet with a DDPO config small enough for sub-second epochs. */
function fixtureExperiment(): string {
  const dir = tempExperiment();
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({ schemaVersion: 1, name: 'kill', createdAt: '2026-01-01T00:00:00Z', baseModel: { id: 'reference-sd', path: REFERENCE_SD }, prompts: ['a cat', 'a dog'] }));
  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({
    num_epochs: 4, sample_num_steps: 3, sample_batch_size: 2, sample_num_batches_per_epoch: 2, train_batch_size: 2, latent_size: 8,
    eval_seeds: [0], train_learning_rate: 1e-2, train_clip_range: 1e-2, lora_rank: 2, lora_alpha: 2,
  }));
  return dir;
}

/** Runs `ddpo train` as a child process; `killWhen` may SIGKILL it (then the exit is reported as the signal). */
function cli(dir: string, resume: boolean, killWhen?: (kill: () => void) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train', '--experiment', dir, ...(resume ? ['--resume'] : [])], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  killWhen?.(() => child.kill('SIGKILL'));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

test('SIGKILL of `ddpo train` at a random moment, then --resume, reproduces the uninterrupted metrics', { skip: SKIP_NO_FIXTURES }, async (t) => {
  const straight = fixtureExperiment();
  const killed = fixtureExperiment();
  const metrics = ddpoLayout(killed).metricsFile;
  // A random moment within the two epochs after the first metrics line (the run has three left then).
  const fraction = Math.random();
  let delay = 0;
  let poll: NodeJS.Timeout | undefined;
  const [whole, cut] = await Promise.all([
    cli(straight, false),
    cli(killed, false, (kill) => {
      poll = setInterval(() => {
        const lines = readMetrics(metrics);
        if (lines.length === 0) return;
        clearInterval(poll);
        delay = Math.floor(fraction * 2 * 1000 * lines[0].seconds.total);
        setTimeout(kill, delay);
      }, 10);
    }),
  ]);
  clearInterval(poll);
  assert.equal(whole.code, 0, whole.stderr);
  const linesAtKill = readMetrics(metrics).length;
  const ckptsAtKill = listCheckpoints(ddpoLayout(killed).checkpointsDir);
  if (cut.signal !== 'SIGKILL') assert.equal(cut.code, 0, cut.stderr); // finished before the kill landed: still must match
  const resumed = await cli(killed, true);
  assert.equal(resumed.code, 0, resumed.stderr);
  const note = cut.signal === 'SIGKILL' ? `SIGKILL ${delay} ms after the first metrics line, ${linesAtKill} line(s) and checkpoints [${ckptsAtKill}] left` : 'the run finished before the kill';
  t.diagnostic(note);
  assert.deepEqual(reproducible(metrics), reproducible(ddpoLayout(straight).metricsFile), note);
  assert.deepEqual(readMetrics(metrics).map((m) => m.epoch), [0, 1, 2, 3], note);
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
