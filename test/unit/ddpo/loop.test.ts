import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ddpoLayout, checkpointName } from '../../../src/core/ddpo/layout';
import { listCheckpoints, loadCheckpoint } from '../../../src/core/ddpo/checkpoint';
import { NonFiniteError } from '../../../src/core/ddpo/guards';
import { readMetrics } from '../../../src/core/ddpo/metrics';
import { readSafetensors } from '../../../src/core/safetensors';
import { runDdpo } from '../../../src/core/ddpo/trainer';
import { brightness, reproducible, runToy, tempExperiment, toyConfig, toyPolicyFor } from './helpers';

const bright = async (imgs: { data: Uint8Array; width: number; height: number }[]) => imgs.map(brightness);
const dark = async (imgs: { data: Uint8Array; width: number; height: number }[]) => imgs.map((i) => -brightness(i));
// Wide clip range: the toy's 64 samples per epoch are too few for PPO's 1e-4 to move it within a test.
const learnable = { num_epochs: 12, sample_batch_size: 16, sample_num_batches_per_epoch: 4, train_clip_range: 1e9, eval_seeds: [], save_freq: 100 };

test('reward rises over epochs, whichever direction the reward asks for', async () => {
  for (const reward of [bright, dark]) {
    const dir = tempExperiment();
    const { metrics } = await runToy(dir, toyConfig(learnable), reward);
    const curve = metrics.map((m) => m.reward_mean);
    const first = (curve[0] + curve[1]) / 2;
    const last = (curve[curve.length - 1] + curve[curve.length - 2]) / 2;
    assert.ok(last > first + 0.008, `reward should rise: ${curve.map((r) => r.toFixed(4)).join(' ')}`);
  }
});

test('metrics.jsonl has one line per epoch with rewards per prompt, PPO stats, timings and evaluation images', async () => {
  const dir = tempExperiment();
  await runToy(dir, toyConfig({ num_epochs: 2 }), bright);
  const lines = readMetrics(ddpoLayout(dir).metricsFile);
  assert.deepEqual(lines.map((l) => l.epoch), [0, 1]);
  const l = lines[1];
  assert.deepEqual(Object.keys(l.reward_per_prompt).sort(), ['a cat', 'a dog']);
  assert.equal(Object.values(l.reward_per_prompt).reduce((n, p) => n + p.count, 0), 8);
  for (const k of ['reward_mean', 'reward_std', 'approx_kl', 'clipfrac', 'loss', 'grad_norm'] as const) assert.ok(Number.isFinite(l[k]), k);
  assert.equal(l.global_step, 8); // 8 samples / train_batch_size 2 = 4 updates per epoch
  assert.ok(l.seconds.sample >= 0 && l.seconds.train >= 0 && l.seconds.total >= l.seconds.train);
  assert.equal(l.eval!.length, 4); // 2 prompts x 2 seeds
  for (const e of l.eval!) assert.ok(fs.statSync(path.join(dir, e.image)).size > 0, e.image);
  // the same prompt and seed at epoch 0 and 1 are different images only because the weights changed
  assert.notEqual(lines[0].eval![0].image, l.eval![0].image);
});

test('with no evaluation seeds (eval_seeds: []) a run renders and scores nothing and creates no ddpo/eval folders', async () => {
  const dir = tempExperiment();
  const sizes: number[] = [];
  await runToy(dir, toyConfig({ num_epochs: 2, eval_seeds: [] }), async (imgs) => (sizes.push(imgs.length), bright(imgs)));
  assert.ok(!fs.existsSync(ddpoLayout(dir).evalDir), 'no ddpo/eval folder');
  assert.ok(readMetrics(ddpoLayout(dir).metricsFile).every((l) => l.eval === undefined && l.eval_reward_mean === undefined));
  assert.ok(sizes.every((n) => n > 0), `the reward was asked to score ${sizes.join(', ')} images`);
});

test('resume after a crash mid-epoch reproduces the uninterrupted run exactly', async () => {
  const config = toyConfig({ num_epochs: 5, per_prompt_stat_tracking: true, per_prompt_stat_tracking_min_count: 4, train_num_inner_epochs: 2, train_gradient_accumulation_steps: 2, train_timestep_fraction: 0.5 });
  const straight = tempExperiment();
  await runToy(straight, config, bright);

  const killed = tempExperiment();
  let calls = 0;
  const crashing = async (imgs: { data: Uint8Array; width: number; height: number }[]) => {
    if (++calls === 3 * 3 + 3) throw new Error('simulated kill'); // epoch 3's second batch: 3 calls per epoch (eval, 2 batches)
    return imgs.map(brightness);
  };
  await assert.rejects(runToy(killed, config, crashing), /simulated kill/);
  assert.deepEqual(listCheckpoints(ddpoLayout(killed).checkpointsDir), [0, 1, 2]);
  const status = JSON.parse(fs.readFileSync(ddpoLayout(killed).statusFile, 'utf8'));
  assert.equal(status.state, 'failed');
  const resumed = await runToy(killed, config, bright, { resume: true });
  assert.equal(resumed.firstEpoch, 3);
  assert.deepEqual(reproducible(ddpoLayout(killed).metricsFile), reproducible(ddpoLayout(straight).metricsFile));
});

test('a checkpoint that spells train_num_inner_epochs by its earlier name resumes without a changed-setting warning', async () => {
  const dir = tempExperiment();
  const config = toyConfig({ num_epochs: 2, train_num_inner_epochs: 2, eval_seeds: [] });
  await runToy(dir, config, bright);
  const ckDir = ddpoLayout(dir).checkpointsDir;
  for (const ck of fs.readdirSync(ckDir)) {
    const f = path.join(ckDir, ck, 'state.json');
    const { train_num_inner_epochs: inner, ...rest } = JSON.parse(fs.readFileSync(f, 'utf8')).config;
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), config: { ...rest, num_inner_epochs: inner } }));
  }
  assert.equal(loadCheckpoint(path.join(ckDir, checkpointName(1))).loop.config.train_num_inner_epochs, 2);
  const more = { ...config, num_epochs: 3 };
  const logs: string[] = [];
  await runDdpo({ config: more, layout: ddpoLayout(dir), policy: toyPolicyFor(more), reward: bright, prompts: ['a cat', 'a dog'], resume: true, onLog: (l) => logs.push(l) });
  assert.ok(logs.some((l) => /^resuming from /.test(l)), logs.join('\n'));
  assert.ok(!logs.some((l) => /changed from/.test(l)), logs.join('\n'));
});

test('starting over an existing run without --resume is refused', async () => {
  const dir = tempExperiment();
  await runToy(dir, toyConfig({ num_epochs: 1 }), bright);
  await assert.rejects(runToy(dir, toyConfig({ num_epochs: 1 }), bright), /--resume/);
});

test('a NaN gradient stops the run with epoch and step and keeps the last good checkpoint', async () => {
  const dir = tempExperiment();
  const config = toyConfig({ num_epochs: 4 });
  const policy = toyPolicyFor(config);
  const update = policy.update.bind(policy);
  let updates = 0;
  policy.update = async (max) => {
    if (++updates === 10) policy.poisonNextUpdate = true; // second update of epoch 2
    return update(max);
  };
  const err = await runToy(dir, config, bright, { policy }).then(() => undefined, (e) => e);
  assert.ok(err instanceof NonFiniteError, String(err));
  assert.equal(err.epoch, 2);
  assert.equal(err.step, 9);
  assert.match(err.message, /epoch 2, global step 9/);
  const layout = ddpoLayout(dir);
  assert.deepEqual(listCheckpoints(layout.checkpointsDir), [0, 1]);
  const ck = loadCheckpoint(path.join(layout.checkpointsDir, checkpointName(1)));
  for (const t of ck.policy.tensors.values()) assert.ok(Array.from(t.data as Float64Array).every(Number.isFinite));
  const status = JSON.parse(fs.readFileSync(layout.statusFile, 'utf8'));
  assert.deepEqual([status.state, status.epoch, status.global_step, status.phase], ['failed', 2, 9, 'train']);
  assert.deepEqual(readMetrics(layout.metricsFile).map((m) => m.epoch), [0, 1]);
});

test('a NaN reward stops the run naming the reward', async () => {
  const dir = tempExperiment();
  const err = await runToy(dir, toyConfig({ num_epochs: 2, eval_seeds: [] }), async (imgs) => imgs.map(() => NaN)).then(() => undefined, (e) => e);
  assert.ok(err instanceof NonFiniteError);
  assert.match(err.message, /reward\[0\] \(NaN\) is not finite at epoch 0/);
});

test('checkpoints are kept up to num_checkpoint_limit and hold both LoRA namings', async () => {
  const dir = tempExperiment();
  await runToy(dir, toyConfig({ num_epochs: 5, num_checkpoint_limit: 2, save_freq: 2 }), bright);
  const layout = ddpoLayout(dir);
  assert.deepEqual(listCheckpoints(layout.checkpointsDir), [3, 4]); // every 2nd epoch, plus the last
  const ck = path.join(layout.checkpointsDir, checkpointName(4));
  const peft = [...readSafetensors(path.join(ck, 'lora_peft.safetensors')).keys()];
  const kohya = [...readSafetensors(path.join(ck, 'lora_kohya.safetensors')).keys()];
  assert.ok(peft.every((k) => /^unet\..+\.lora_[AB]\.weight$/.test(k)), peft.join());
  assert.ok(kohya.every((k) => /^lora_unet_[a-z0-9_]+\.(lora_down\.weight|lora_up\.weight|alpha)$/.test(k)), kohya.join());
  assert.equal(fs.readdirSync(layout.checkpointsDir).filter((n) => n.startsWith('.tmp')).length, 0);
});

// resume_from left in ddpo.json must not rewind every later Resume: it rewinds once, keeps the later checkpoints aside,
// and a stop and Resume after it continue the rewound run from its newest checkpoint.
test('resume_from rewinds a run once, sets its later checkpoints aside, and later resumes continue the rewound run', async () => {
  const dir = tempExperiment();
  const layout = ddpoLayout(dir);
  await runToy(dir, toyConfig({ num_epochs: 4, eval_seeds: [] }), bright);
  assert.deepEqual(listCheckpoints(layout.checkpointsDir), [0, 1, 2, 3]);
  const rewound = toyConfig({ num_epochs: 3, eval_seeds: [], resume_from: `ddpo/checkpoints/${checkpointName(1)}` });
  const first = await runToy(dir, rewound, bright, { resume: true });
  assert.deepEqual([first.firstEpoch, first.lastEpoch], [2, 2]);
  assert.deepEqual(listCheckpoints(layout.checkpointsDir), [0, 1, 2]);
  const aside = fs.readdirSync(layout.checkpointsDir).filter((n) => n.startsWith('superseded-'));
  assert.equal(aside.length, 1);
  assert.deepEqual(fs.readdirSync(path.join(layout.checkpointsDir, aside[0])).sort(), [checkpointName(2), checkpointName(3)], 'the old run\'s later checkpoints are kept');
  assert.deepEqual(readMetrics(layout.metricsFile).map((m) => m.epoch), [0, 1, 2]);
  // the same resume_from, still in ddpo.json: Resume continues from epoch 3 of the rewound run
  const again = await runToy(dir, { ...rewound, num_epochs: 5 }, bright, { resume: true });
  assert.deepEqual([again.firstEpoch, again.lastEpoch], [3, 4]);
  assert.deepEqual(readMetrics(layout.metricsFile).map((m) => m.epoch), [0, 1, 2, 3, 4]);
});

test('a checkpoint whose replacement was killed between its two renames is put back by the next prune', async () => {
  const { pruneCheckpoints } = await import('../../../src/core/ddpo/checkpoint');
  const dir = tempExperiment();
  const layout = ddpoLayout(dir);
  await runToy(dir, toyConfig({ num_epochs: 2, eval_seeds: [] }), bright);
  // the old copy of epoch 1 stepped aside, and the process died before the new one was renamed in
  const ck = layout.checkpointsDir;
  fs.renameSync(path.join(ck, checkpointName(1)), path.join(ck, `.old-${checkpointName(1)}-999999999-abc`));
  fs.cpSync(path.join(ck, checkpointName(0)), path.join(ck, `.old-${checkpointName(0)}-999999999-def`), { recursive: true });
  await pruneCheckpoints(ck, 5);
  assert.deepEqual(listCheckpoints(ck), [0, 1]);
  assert.equal(loadCheckpoint(path.join(ck, checkpointName(1))).loop.epoch, 1);
  assert.deepEqual(fs.readdirSync(ck).filter((n) => n.startsWith('.')), [], 'a leftover whose epoch is in place is removed');
});
