// The Diffusion-DPO run: which ratings become pairs, the implicit reward accuracy written to metrics.jsonl, learning,
// and resume, on a toy policy with exact gradients (dpoToy.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listCheckpoints } from '../../../src/core/ddpo/checkpoint';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { describePairs, readPreferencePairs } from '../../../src/core/ddpo/dpoPairs';
import { HELD_OUT_NOISE_LEVELS, runDiffusionDpo } from '../../../src/core/ddpo/dpoTrainer';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { readMetrics, type DpoEpochMetrics } from '../../../src/core/ddpo/metrics';
import { encodePairLatents } from '../../../src/core/experiment/pairLatents';
import { encodePng } from '../../../src/core/image/png';
import { isHeldOut } from '../../../src/core/reward/experiment';
import { PreferenceStore } from '../../../src/core/reward/store';
import { reproducible, tempExperiment } from './helpers';
import { DpoToyPolicy, toyPreferenceData } from './dpoToy';

const BETA = 2;
const dpoConfig = (o: Record<string, unknown> = {}) => parseDdpoConfig({
  algorithm: 'diffusion-dpo', seed: 3, num_epochs: 4, train_batch_size: 2, train_gradient_accumulation_steps: 2, train_learning_rate: 0.05,
  beta_dpo: BETA, eval_seeds: [], save_freq: 1, ...o,
}).config;

async function runToyDpo(dir: string, policy: DpoToyPolicy, o: { resume?: boolean; config?: Record<string, unknown> } = {}) {
  const data = toyPreferenceData(40);
  const r = await runDiffusionDpo({ config: dpoConfig(o.config), layout: ddpoLayout(dir, 'diffusion-dpo'), policy, pairs: data, prompts: ['a cat', 'a dog'], resume: o.resume });
  return { ...r, data };
}

test('metrics.jsonl: per epoch the held-out implicit reward accuracy is the share of held-out pairs whose DPO margin (mean over the noise levels) is positive; the toy learns the preference', async () => {
  const dir = tempExperiment();
  const policy = new DpoToyPolicy(0.05);
  const { data } = await runToyDpo(dir, policy);
  const lines = readMetrics<DpoEpochMetrics>(ddpoLayout(dir, 'diffusion-dpo').metricsFile);
  assert.deepEqual(lines.map((l) => [l.algorithm, l.epoch]), [0, 1, 2, 3].map((e) => ['diffusion-dpo', e]));
  assert.deepEqual(lines[0].data, { train: 32, held_out: 8, ties: 2, skips: 1, without_latents: 0, latents: 'stored' });
  assert.ok(!fs.existsSync(ddpoLayout(dir).metricsFile), 'the DDPO run folder is left alone');

  // the base model's errors are scored once, then each epoch the current LoRA's at the same noise levels
  const base = policy.scored.filter((s) => s.weights === 'base');
  const current = policy.scored.filter((s) => s.weights === 'current');
  assert.equal(base.length, HELD_OUT_NOISE_LEVELS);
  assert.equal(current.length, HELD_OUT_NOISE_LEVELS * 4);
  const B = data.heldOut.length;
  lines.forEach((line, epoch) => {
    const margins = Array.from({ length: B }, (_, k) => {
      let sum = 0;
      for (let level = 0; level < HELD_OUT_NOISE_LEVELS; level++) {
        const cur = current[epoch * HELD_OUT_NOISE_LEVELS + level], ref = base[level];
        assert.deepEqual(cur.batch.timesteps, ref.batch.timesteps, 'every epoch scores the same noise');
        assert.deepEqual(cur.batch.winners, data.heldOut.map((p) => p.winner));
        sum += -0.5 * BETA * ((cur.errors[k] - ref.errors[k]) - (cur.errors[B + k] - ref.errors[B + k]));
      }
      return sum / HELD_OUT_NOISE_LEVELS;
    });
    assert.equal(line.held_out!.pairs, B);
    assert.equal(line.held_out!.implicit_acc, margins.filter((m) => m > 0).length / B, `epoch ${epoch}`);
    assert.ok(Math.abs(line.held_out!.margin_mean - margins.reduce((s, m) => s + m, 0) / B) < 1e-9);
  });
  assert.ok(lines[3].held_out!.implicit_acc >= 0.875, `held-out implicit accuracy after 4 epochs: ${lines.map((l) => l.held_out!.implicit_acc)}`);
  assert.ok(lines[3].held_out!.margin_mean > lines[0].held_out!.margin_mean, 'the margin grows as the LoRA learns');
  assert.ok(lines[3].loss < Math.log(2), 'training loss below that of the reference (log 2)');

  // training sees only training pairs, winner first, both images of a pair at one timestep and noise
  const heldOutLatents = new Set(data.heldOut.flatMap((p) => [p.winner, p.loser]));
  const winners = new Set(data.train.map((p) => p.winner));
  for (const b of policy.trained) {
    assert.ok(b.winners.every((w) => winners.has(w)) && !b.losers.some((l) => heldOutLatents.has(l) || winners.has(l)));
    assert.equal(b.noise.length, b.prompts.length);
  }
  // 32 pairs, 4 per optimizer step, every pair once per epoch
  assert.equal(policy.trained.length, 4 * 16);
  assert.equal(lines[3].global_step, 4 * 8);
});

test('a Diffusion-DPO run stopped mid-epoch and resumed reproduces the uninterrupted run exactly', async () => {
  const straight = tempExperiment();
  const whole = new DpoToyPolicy(0.05);
  await runToyDpo(straight, whole);

  const killed = tempExperiment();
  const first = new DpoToyPolicy(0.05);
  first.failAtStep = 2 * 16 + 5; // epoch 2, third optimizer step
  await assert.rejects(runToyDpo(killed, first), /simulated kill/);
  const layout = ddpoLayout(killed, 'diffusion-dpo');
  assert.deepEqual(listCheckpoints(layout.checkpointsDir), [0, 1]);
  assert.equal(JSON.parse(fs.readFileSync(layout.statusFile, 'utf8')).state, 'failed');
  await assert.rejects(runToyDpo(killed, new DpoToyPolicy(0.05)), /--resume/);

  const second = new DpoToyPolicy(0.05);
  const resumed = await runToyDpo(killed, second, { resume: true });
  assert.equal(resumed.firstEpoch, 2);
  assert.deepEqual(reproducible(layout.metricsFile), reproducible(ddpoLayout(straight, 'diffusion-dpo').metricsFile));
  assert.deepEqual(second.params, whole.params);
});

test('fewer training pairs than one optimizer step takes is refused, saying what to do', async () => {
  await assert.rejects(runToyDpo(tempExperiment(), new DpoToyPolicy(0.05), { config: { train_batch_size: 8, train_gradient_accumulation_steps: 8 } }), /at least 64 training pairs.*rate more pairs/);
});

test('rated pairs: a decided rating is a pair with the chosen image as winner (a side-swapped repeat counts again); ties, skips and retracted ratings are no pairs; images without latents are left out and counted', async () => {
  const dir = tempExperiment();
  const latentOf = new Map<string, Float32Array>();
  const pair = (id: string, opts: { latents?: false; shape?: number[] } = {}) => {
    const folder = path.join(dir, 'samples', id);
    fs.mkdirSync(folder, { recursive: true });
    const shape = opts.shape ?? [1, 2, 2];
    const latents: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [k, stem] of ['a', 'b'].entries()) {
      fs.writeFileSync(path.join(folder, `${stem}.png`), encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(12).fill(40 * k) }));
      const data = Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, i) => (k ? -1 : 1) * (i + 1) + id.length);
      latents[stem] = { shape, data };
      latentOf.set(`samples/${id}/${stem}.png`, data);
    }
    if (opts.latents !== false) fs.writeFileSync(path.join(folder, 'latents.safetensors'), encodePairLatents(latents));
    return { a: `samples/${id}/a.png`, b: `samples/${id}/b.png` };
  };
  const store = PreferenceStore.open(dir);
  const rate = (pairId: string, left: string, right: string, choice: 'left' | 'right' | 'tie' | 'skip', sideOrder: 'ab' | 'ba' = 'ab') =>
    store.append({ pairId, prompt: `prompt of ${pairId}`, left, right, choice, rater: 'me', sideOrder });
  const p1 = pair('p1'), p2 = pair('p2'), p3 = pair('p3'), p4 = pair('p4'), p5 = pair('p5'), p6 = pair('p6', { latents: false }), p7 = pair('p7', { shape: [1, 3, 3] });
  rate('p1', p1.a, p1.b, 'left');
  rate('p1', p1.b, p1.a, 'right', 'ba');
  rate('p2', p2.a, p2.b, 'right');
  rate('p3', p3.a, p3.b, 'tie');
  rate('p4', p4.a, p4.b, 'skip');
  store.retract(rate('p5', p5.a, p5.b, 'left').id);
  rate('p6', p6.a, p6.b, 'left');
  rate('p7', p7.a, p7.b, 'left');
  store.close();

  const d = await readPreferencePairs(dir, new DpoToyPolicy(0.05));
  const all = [...d.train, ...d.heldOut];
  assert.deepEqual(all.map((p) => p.pairId).sort(), ['p1', 'p1', 'p2']);
  for (const p of all) assert.equal(d.heldOut.includes(p), isHeldOut(p.pairId, 0.2), 'held out with the reward model\'s split');
  const byId = (id: string) => all.filter((p) => p.pairId === id);
  for (const p of byId('p1')) assert.deepEqual([p.winner, p.loser], [latentOf.get(p1.a), latentOf.get(p1.b)]);
  assert.deepEqual([byId('p2')[0].winner, byId('p2')[0].loser], [latentOf.get(p2.b), latentOf.get(p2.a)]);
  assert.equal(byId('p2')[0].prompt, 'prompt of p2');
  assert.deepEqual(d.counts, { ratings: 7, ties: 1, skips: 1, withoutLatents: 2 });
  assert.equal(d.latents, 'stored');
  assert.equal(d.problems.length, 2);
  assert.match(d.problems.join('\n'), /no latents\.safetensors beside it/);
  assert.match(d.problems.join('\n'), /latents of 1x3x3, but the model trains on 1x2x2/);
  assert.match(describePairs(d), /^Diffusion-DPO on \d rated pairs \(\d held out\) of 7 ratings: 1 ties and 1 skips carry no preference, 2 without latents/);
});

test('each optimizer step\'s gradient is the mean over its train_batch_size x train_gradient_accumulation_steps pairs, not their sum', async () => {
  // the toy's loss is the mean over the 2 pairs of a run: a step of 2 x 2 pairs is two runs weighing 1/2 each, or
  // accumulation would double the step's gradient (and trip train_max_grad_norm at half the gradient)
  const policy = new DpoToyPolicy(0.05);
  const perStep: number[][] = [[]];
  const accumulate = policy.accumulatePreferences.bind(policy), update = policy.update.bind(policy);
  policy.accumulatePreferences = async (batch, beta, lossScale) => (perStep[perStep.length - 1].push(lossScale), accumulate(batch, beta, lossScale));
  policy.update = async (max) => (perStep.push([]), update(max));
  await runToyDpo(tempExperiment(), policy, { config: { num_epochs: 1 } });
  perStep.pop();
  assert.equal(perStep.length, 8);
  for (const weights of perStep) assert.deepEqual(weights, [0.5, 0.5]);
});

test('with train_timestep_selection "earliest" Diffusion-DPO trains and scores only the noisiest train_timestep_fraction of timesteps', async () => {
  // where DDPO's "earliest" trains too: the steps that decide an image's layout
  const policy = new DpoToyPolicy(0.05);
  await runToyDpo(tempExperiment(), policy, { config: { num_epochs: 1, train_timestep_selection: 'earliest', train_timestep_fraction: 0.25 } });
  const trained = policy.trained.flatMap((b) => b.timesteps), scored = policy.scored.flatMap((s) => s.batch.timesteps);
  assert.ok(trained.length > 0 && scored.length > 0);
  for (const t of [...trained, ...scored]) assert.ok(t >= 750 && t < 1000, `timestep ${t} is outside the noisiest quarter [750, 1000)`);
});
