// train_old_log_probs: PPO's old log-probabilities from the sampler, or rescored by the training computation before any update.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDdpoConfig, type DdpoConfig } from '../../../src/core/ddpo/config';
import { trainEpoch, type OldLogProbSource } from '../../../src/core/ddpo/ppo';
import type { EpochSamples } from '../../../src/core/ddpo/sampling';
import type { Policy, PolicyScoreRequest, PolicyTrainRequest } from '../../../src/core/ddpo/types';
import { GaussianRng } from '../../../src/core/diffusion/rng';
import { readMetrics } from '../../../src/core/ddpo/metrics';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { runDdpo } from '../../../src/core/ddpo/trainer';
import { ToyPolicy } from './toyPolicy';
import { brightness, tempExperiment, toyConfig, toyPolicyFor } from './helpers';

// 4 samples of 6 steps, batches of 2, one update per batch, TRL's clip range 1e-4; 2 PPO passes over 4 of the 6 timesteps.
const SETTINGS = { sample_num_steps: 6, sample_batch_size: 4, sample_num_batches_per_epoch: 1, train_batch_size: 2, train_timestep_fraction: 0.67,
  train_num_inner_epochs: 2, train_learning_rate: 1e-2, train_clip_range: 1e-4 };
const config = (mode: string, more: Record<string, unknown> = {}) => parseDdpoConfig({ ...SETTINGS, ...more, train_old_log_probs: mode }).config;
const PROMPTS = ['a cat', 'a dog', 'a fox', 'a cat'];
const ADVANTAGES = [1.2, -0.8, 0.5, -0.9];
const newToy = () => new ToyPolicy(4, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4 });

async function epochSamples(): Promise<EpochSamples> {
  const s = await newToy().sample({ prompts: PROMPTS, negativePrompt: '', seed: 3, numSteps: 6, eta: 1, guidanceScale: 5 });
  return { ...s, prompts: PROMPTS, metadata: new Array(4).fill({}), rewards: new Array(4).fill(0) };
}

/** The samples as a sampler that rounds differently would record them: every log-probability off by `offset`. */
const offBy = (s: EpochSamples, offset: number): EpochSamples => ({ ...s, logProbs: s.logProbs.map((lp) => lp.map((v, t) => v + offset * (t % 2 ? 1 : -1))) });

/** One epoch with a fresh toy, counting what the loop asked of it. */
async function train(c: DdpoConfig, samples: EpochSamples, oldLogProbs?: OldLogProbSource, opts: { noScore?: boolean } = {}) {
  const toy = newToy();
  const calls: string[] = [];
  const policy: Policy = Object.assign(Object.create(toy) as ToyPolicy, {
    accumulate: (r: PolicyTrainRequest) => { calls.push('train'); return toy.accumulate(r); },
    score: opts.noScore ? undefined : (r: PolicyScoreRequest) => { calls.push(`score ${r.prompts.length}`); return toy.score(r); },
  });
  const progress: [number, number][] = [];
  const summary = await trainEpoch({ config: c, policy, shuffleRng: new GaussianRng(2), epoch: 0, globalStep: 0, oldLogProbs, onStep: (d, t) => progress.push([d, t]) }, samples, ADVANTAGES);
  return { summary, params: [...toy.params], calls, progress };
}

/** Largest parameter difference. */
const dist = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

test('auto: a sampler off by more than the clip range is caught before the first update, and later updates compare against the training computation', async () => {
  const samples = await epochSamples();
  const exact = await train(config('auto'), samples);
  assert.deepEqual([exact.summary.old_log_probs, exact.summary.clipfrac_before_update, exact.summary.logprob_mismatch], ['sampler', 0, 0]);
  assert.ok(!exact.calls.some((k) => k.startsWith('score')), 'an exact sampler costs no scoring');
  assert.ok(exact.summary.clipfrac > 0, 'later updates do clip at 1e-4, so clipping is live in this setting');

  // TRL's behaviour: every transition before the first update is clipped though none moved, and the weights end elsewhere
  const trl = await train(config('sampler'), offBy(samples, 3e-4));
  assert.equal(trl.summary.clipfrac_before_update, 1);
  assert.ok(Math.abs(trl.summary.logprob_mismatch! - 3e-4) < 1e-9);
  assert.ok(!trl.calls.some((k) => k.startsWith('score')));

  const auto = await train(config('auto'), offBy(samples, 3e-4));
  assert.deepEqual([auto.summary.old_log_probs, auto.summary.clipfrac_before_update], ['training_graph', 0]);
  assert.ok(Math.abs(auto.summary.logprob_mismatch! - 3e-4) < 1e-9, `mismatch ${auto.summary.logprob_mismatch}`);
  // the first update's 4 runs, then the epoch's other transitions scored 2 at a time (none twice), then the rest of the training
  const firstScore = auto.calls.findIndex((k) => k.startsWith('score'));
  const scores = auto.calls.filter((k) => k.startsWith('score'));
  assert.equal(firstScore, 4, auto.calls.join(', '));
  assert.deepEqual(auto.calls.slice(firstScore, firstScore + scores.length), scores);
  assert.ok(scores.length >= 4 && scores.length <= 8 && scores.every((k) => k === 'score 2'), scores.join(', '));
  assert.equal(auto.calls.filter((k) => k === 'train').length, exact.calls.length);
  // the same training as with an exact sampler, but for the first update's ratio of exp(±3e-4) in place of 1
  assert.ok(dist(auto.params, exact.params) < dist(trl.params, exact.params) / 20, `${dist(auto.params, exact.params)} vs ${dist(trl.params, exact.params)}`);
  assert.ok(Math.abs(auto.summary.clipfrac - exact.summary.clipfrac) < 0.05, `clipfrac ${auto.summary.clipfrac} vs ${exact.summary.clipfrac}`);
});

test('training_graph scores even an exact sampler; an epoch after auto found a mismatch scores at once', async () => {
  const exact = await train(config('sampler'), await epochSamples());
  for (const [mode, known, offset] of [['training_graph', undefined, 0], ['auto', 'training_graph', 2e-5]] as const) {
    const r = await train(config(mode), offBy(await epochSamples(), offset), known);
    assert.equal(r.calls.findIndex((k) => k.startsWith('score')), 4, `${mode}: ${r.calls.join(', ')}`);
    assert.equal(r.summary.old_log_probs, 'training_graph');
    assert.ok(dist(r.params, exact.params) < 1e-6, `${mode}: ${dist(r.params, exact.params)}`);
    // scoring known to come is in the progress total from the start; done climbs to it
    const totals = new Set(r.progress.map(([, t]) => t));
    assert.equal(totals.size, 1, `${mode}: totals ${[...totals].join(', ')}`);
    assert.ok(r.progress.every(([d], i) => i === 0 || d > r.progress[i - 1][0]) && r.progress.at(-1)![0] === [...totals][0], JSON.stringify(r.progress));
  }
  // below the clip range, auto keeps the sampler's values; 'sampler' ignores what auto found
  assert.equal((await train(config('auto'), offBy(await epochSamples(), 2e-5))).summary.old_log_probs, 'sampler');
  assert.equal((await train(config('sampler'), offBy(await epochSamples(), 3e-4), 'training_graph')).summary.old_log_probs, 'sampler');
});

test('a policy that cannot score: training_graph is refused by name, auto keeps the sampler', async () => {
  const samples = offBy(await epochSamples(), 3e-4);
  await assert.rejects(train(config('training_graph'), samples, undefined, { noScore: true }), /train_old_log_probs "training_graph": this policy cannot score/);
  const r = await train(config('auto'), samples, undefined, { noScore: true });
  assert.equal(r.summary.old_log_probs, 'sampler');
  assert.equal(r.summary.clipfrac_before_update, 1);
  assert.throws(() => parseDdpoConfig({ train_old_log_probs: 'pytorch' }), /"train_old_log_probs" must be "auto", "sampler" or "training_graph", got "pytorch"/);
});

test('the run log says once why it rescores, metrics.jsonl records the source, and a resumed run remembers it', async () => {
  const dir = tempExperiment();
  const c = toyConfig({ num_epochs: 2, train_clip_range: 1e-4, eval_seeds: [] });
  const bright = async (imgs: { data: Uint8Array; width: number; height: number }[]) => imgs.map(brightness);
  // a sampler that rounds differently from the training computation
  const skewed = (policy: ToyPolicy): ToyPolicy => Object.assign(Object.create(policy) as ToyPolicy, {
    sample: async (req: Parameters<ToyPolicy['sample']>[0]) => {
      const s = await policy.sample(req);
      return { ...s, logProbs: s.logProbs.map((lp) => lp.map((v) => v + 5e-4)) };
    },
  });
  const logs: string[] = [];
  await runDdpo({ config: c, layout: ddpoLayout(dir), policy: skewed(toyPolicyFor(c)), reward: bright, prompts: ['a cat', 'a dog'], onLog: (l) => logs.push(l) });
  const lines = readMetrics(ddpoLayout(dir).metricsFile);
  assert.deepEqual(lines.map((l) => [l.old_log_probs, l.clipfrac_before_update]), [['training_graph', 0], ['training_graph', 0]]);
  assert.ok(lines.every((l) => Math.abs(l.logprob_mismatch! - 5e-4) < 1e-9));
  const said = logs.filter((l) => /PPO compares against the training graph's own log-probabilities/.test(l));
  assert.equal(said.length, 1, logs.join('\n'));
  assert.match(said[0], /^epoch 0: the sampler's log-probabilities differ from the training graph's by up to 5\.0e-4 though the LoRA had not changed, more than train_clip_range 0\.0001/);

  // resumed for 2 more epochs: it knows from metrics.jsonl, so it says nothing again. The checkpoint is made to look
  // older than this setting: a missing key ran with its default, which is no change to warn about.
  const fs = await import('node:fs');
  const path = await import('node:path');
  const ckDir = ddpoLayout(dir).checkpointsDir;
  for (const ck of fs.readdirSync(ckDir)) {
    const f = path.join(ckDir, ck, 'state.json');
    const state = JSON.parse(fs.readFileSync(f, 'utf8'));
    delete state.config.train_old_log_probs;
    fs.writeFileSync(f, JSON.stringify(state));
  }
  const more = { ...c, num_epochs: 4 };
  const logs2: string[] = [];
  await runDdpo({ config: more, layout: ddpoLayout(dir), policy: skewed(toyPolicyFor(more)), reward: bright, prompts: ['a cat', 'a dog'], resume: true, onLog: (l) => logs2.push(l) });
  assert.deepEqual(readMetrics(ddpoLayout(dir).metricsFile).map((l) => l.old_log_probs), ['training_graph', 'training_graph', 'training_graph', 'training_graph']);
  assert.ok(!logs2.some((l) => /PPO compares against|changed from/.test(l)), logs2.join('\n'));
  assert.ok(logs2.some((l) => /^resuming from /.test(l)), logs2.join('\n'));
});
