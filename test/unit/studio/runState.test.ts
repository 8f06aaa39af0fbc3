import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { effectiveState, readRunState } from '../../../src/core/studio/runState';
import { isStudioPath } from '../../../src/core/studio/watch';
import { EMBEDDED_MODEL_ID } from '../../../src/core/experiment/modelDir';
import { parsePrompts, presetById, PRESETS, modelLabel } from '../../../src/core/studio/presets';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { acquireRunLock, RUN_LOCK_FILE } from '../../../src/core/experiment/runLock';

test('a run that status.json calls running but no worker runs is shown as interrupted', () => {
  assert.equal(effectiveState('running', false), 'interrupted');
  assert.equal(effectiveState('running', true), 'running');
  assert.equal(effectiveState(undefined, false), 'idle');
  assert.equal(effectiveState('done', false), 'done');
  assert.equal(effectiveState('failed', false), 'failed');
});

test('status "running" is believed while its writer holds the run lock; a dead writer on this machine reads as interrupted', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-studio-run-'));
  fs.mkdirSync(path.join(dir, 'ddpo'));
  const writeStatus = (pid: number, host = os.hostname()) => fs.writeFileSync(path.join(dir, 'ddpo', 'status.json'), JSON.stringify({ state: 'running', pid, host }));
  // a `ddpo train` in a terminal, or another window's worker
  const lock = acquireRunLock(dir, 'ddpo train');
  writeStatus(process.pid);
  assert.equal(readRunState(dir, false).state, 'running');
  lock.release();
  assert.equal(readRunState(dir, false).state, 'interrupted', 'the run ended without writing its final state');
  const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  const lockOf = (pid: number, host = os.hostname()) => fs.writeFileSync(path.join(dir, RUN_LOCK_FILE), JSON.stringify({ pid, host, since: '2026-01-01T00:00:00Z', what: 'ddpo train', token: 't' }));
  writeStatus(dead);
  lockOf(dead);
  assert.equal(readRunState(dir, false).state, 'interrupted', 'killed: status and lock left by a process that is gone');
  writeStatus(4242, 'render-box-7');
  lockOf(4242, 'render-box-7');
  assert.equal(readRunState(dir, false).state, 'running', 'another machine\'s run cannot be checked from here');
});

// A run stopped with Stop keeps its checkpoints and is resumed from its row: shown as "stopped", never as a run
// that has not started (whose row offers only Start Fine-Tuning).
test('a run status.json calls stopped reads as stopped, not as one never started', () => {
  assert.equal(effectiveState('stopped', false), 'stopped');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-studio-run-'));
  fs.mkdirSync(path.join(dir, 'ddpo'));
  fs.writeFileSync(path.join(dir, 'ddpo', 'status.json'), JSON.stringify({ state: 'stopped', message: 'Stopped by the user.' }));
  assert.equal(readRunState(dir, false).state, 'stopped');
});

// The run lock outlives a killed run only as a stale file, but another process may hold it afterwards (an Export
// LoRA, a reward training): that one's pid is not the run's, and the killed run must still read as interrupted, so
// the studio offers Resume instead of a spinner that never ends.
test('a killed run reads as interrupted while another live process holds the experiment\'s lock', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-studio-run-'));
  fs.mkdirSync(path.join(dir, 'ddpo'));
  const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  fs.writeFileSync(path.join(dir, 'ddpo', 'status.json'), JSON.stringify({ state: 'running', pid: dead, host: os.hostname() }));
  const lock = acquireRunLock(dir, 'ddpo export-lora');
  try {
    assert.equal(readRunState(dir, false).state, 'interrupted');
  } finally {
    lock.release();
  }
});

test('the run state comes from the files: epochs, charts, newest eval images, checkpoints', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-studio-run-'));
  assert.equal(readRunState(dir, false).state, 'idle');
  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({ num_epochs: 3 }));
  fs.mkdirSync(path.join(dir, 'ddpo', 'checkpoints', 'epoch-000000'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'ddpo', 'checkpoints', 'epoch-000000', 'state.json'), '{}');
  fs.writeFileSync(path.join(dir, 'ddpo', 'status.json'), JSON.stringify({ state: 'running', pid: 1 }));
  const line = (epoch: number, withEval: boolean) => JSON.stringify({ epoch, reward_mean: epoch, reward_std: 0.5, approx_kl: 1e-5, clipfrac: 0.1, ...(withEval ? { eval: [{ prompt: 'p', seed: 0, image: `ddpo/eval/e${epoch}.png`, reward: 1 }] } : {}) });
  fs.writeFileSync(path.join(dir, 'ddpo', 'metrics.jsonl'), `${line(0, true)}\n${line(1, false)}\n{"epoch": 2, "rew`);
  const s = readRunState(dir, false);
  assert.equal(s.state, 'interrupted');
  assert.equal(s.numEpochs, 3);
  assert.equal(s.lastEpoch, 1, 'a torn last line is ignored');
  assert.deepEqual(s.points.map((p) => p.rewardMean), [0, 1]);
  assert.equal(s.evalEpoch, 0);
  assert.equal(s.evalImages[0].image, 'ddpo/eval/e0.png');
  assert.deepEqual(s.checkpoints, [0]);
});

test('the watcher reacts to ratings, reward, run and comparison files but not to images', () => {
  for (const p of ['experiment.json', 'ratings.jsonl', 'reward/card.json', 'ddpo/status.json', 'ddpo/metrics.jsonl', 'ddpo/checkpoints/epoch-000001', 'compare/x/manifest.json', 'compare/x/ratings.jsonl', 'ddpo.json']) assert.ok(isStudioPath(p), p);
  for (const p of ['samples/pair-0-x/a.png', 'ddpo/eval/epoch-000000/p0-s0.png', 'compare/x/images/ab.png', 'reward/head.safetensors', 'ddpo/checkpoints/epoch-000001/lora_peft.safetensors']) assert.ok(!isStudioPath(p), p);
});

test('presets are valid ddpo.json settings, and prompts parse from typed text or a file', () => {
  for (const p of PRESETS) assert.doesNotThrow(() => parseDdpoConfig(p.ddpo, p.label));
  assert.equal(presetById('cpu-quick').label, 'Quick test on CPU');
  assert.throws(() => presetById('tpu'), /Unknown preset/);
  assert.deepEqual(parsePrompts(' a cat ; a dog;;a cat'), ['a cat', 'a dog']);
  assert.deepEqual(parsePrompts('# my prompts\na cat\n\na dog; with a semicolon\n'), ['a cat', 'a dog; with a semicolon']);
  assert.equal(modelLabel({ id: EMBEDDED_MODEL_ID }), 'tiny-shapes (embedded)');
});
