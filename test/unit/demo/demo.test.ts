import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CliIO } from '../../../src/cli/command';
import { commands } from '../../../src/cli/commands';
import { runCli } from '../../../src/cli/dispatch';
import { composeGrid } from '../../../src/core/demo/grid';
import { embeddedModelDir } from '../../../src/core/experiment/modelDir';
import type { DemoReport, DpoDemoReport } from '../../../src/core/demo/report';
import { readMetrics, type DpoEpochMetrics } from '../../../src/core/ddpo/metrics';
import { decodePng } from '../../../src/core/image/png';
import { rewardModelFiles } from '../../../src/core/reward/model';
import { readRatings } from '../../../src/core/reward/store';
import { listPairs } from '../../../src/core/studio/pairs';
import { needsTinyClip, needsTinyModel } from '../fixtures';
import { FIDELITY_EVAL_PROMPTS, FIDELITY_TRAIN_PROMPTS } from '../../../src/core/demo/taste';
import { TINY_CLIP_BACKBONE_ID } from '../../../src/core/experiment/schema';
import { roundShare, runDemo } from '../../../src/core/demo/run';
import { quickDemoOptions, withTaste } from '../../../src/core/demo/settings';

const modelDir = path.resolve(__dirname, '../../../media/tiny-model');
const noModel = needsTinyModel();

test('the embedded model is found from the sources and from a bundle folder one level below the root', () => {
  assert.equal(embeddedModelDir(path.resolve(__dirname, '../../../src/core/experiment')), modelDir);
  assert.equal(embeddedModelDir(path.resolve(__dirname, '../../../dist')), modelDir);
});

test('the grid puts base images left and tuned images right, one row per prompt', () => {
  const solid = (v: number) => ({ width: 2, height: 2, data: new Uint8Array(12).fill(v) });
  const g = composeGrid([{ base: [solid(10), solid(20)], tuned: [solid(200), solid(210)] }], { scale: 2, gap: 1 });
  const px = (x: number, y: number) => g.data[(y * g.width + x) * 3];
  const rowY = g.height - 4; // inside the only row of cells (4 px tall, then two 1 px gaps)
  assert.equal(px(1, rowY), 10);
  assert.equal(px(g.width - 2, rowY), 210);
});

test('ddpo demo --quick runs every phase on the embedded model and writes a coherent report and grid', { skip: noModel }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-demo-'));
  const out: string[] = [], progress: string[] = [], err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), progress: (l) => progress.push(l), signal: new AbortController().signal };
  const code = await runCli(['demo', '--quick', '--workspace', ws, '--name', 'quick'], io, commands);
  assert.equal(code, 0, err.join('\n'));
  const dir = path.join(ws, '.ddpo', 'quick');
  for (const f of ['experiment.json', 'ddpo.json', 'ratings.jsonl', 'reward/card.json', 'ddpo/metrics.jsonl', 'report.json', 'grid.png']) {
    assert.ok(fs.existsSync(path.join(dir, f)), `missing ${f}`);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'ddpo', 'eval')), 'the demo evaluates no fixed images during DDPO (eval_seeds []), so it writes no eval folders');
  const head = rewardModelFiles(dir).head;
  assert.ok(fs.existsSync(head), `missing the reward head ${head} that reward/card.json names`);
  const r = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as DemoReport;
  const n = r.eval.prompts.length * r.eval.seeds.length;
  assert.equal(r.eval.wins + r.eval.losses + r.eval.ties, n);
  assert.equal(r.eval.judgements.length, n);
  assert.equal(r.eval.winRate.n, n);
  assert.ok(r.eval.winRate.low <= r.eval.winRate.rate && r.eval.winRate.rate <= r.eval.winRate.high, JSON.stringify(r.eval.winRate));
  assert.equal(r.eval.winRate.rate, (r.eval.wins + r.eval.ties / 2) / n);
  // held out: no evaluation prompt was trained on, and sides were actually shuffled
  const trained = new Set(JSON.parse(fs.readFileSync(path.join(dir, 'experiment.json'), 'utf8')).prompts as string[]);
  assert.ok(r.eval.prompts.every((p) => !trained.has(p)));
  assert.equal(r.ddpo.curve.length, (r.settings as { epochs: number }).epochs);
  assert.ok(r.ratings.ratings > 0 && Number.isFinite(r.rewardModel.heldOutAccuracy));
  // the rating images are the studio's pair folders, so the studio lists (and can show) the demo's pairs
  const settings = r.settings as { trainPrompts: string[]; imagesPerPrompt: number };
  const pairs = listPairs(dir);
  assert.equal(pairs.length, settings.trainPrompts.length * settings.imagesPerPrompt / 2);
  const images = new Set(pairs.flatMap((p) => [p.a, p.b]));
  assert.ok(readRatings(dir).ratings.every((x) => images.has(x.left) && images.has(x.right)));
  assert.ok(r.ddpo.deviationsFromTrl.train_clip_range, 'settings that differ from TRL are recorded');
  // this project's keys are recorded and printed against their own defaults, never labelled as TRL's
  assert.deepEqual(r.ddpo.projectSettings.train_timestep_selection, { default: 'random', demo: 'earliest' });
  assert.ok(!('train_timestep_selection' in r.ddpo.deviationsFromTrl) && !('train_kl_guard' in r.ddpo.deviationsFromTrl));
  const trlLine = out.find((l) => l.startsWith('DDPO settings that differ from TRL')) ?? '';
  assert.match(trlLine, /train_num_inner_epochs=2 \(1\)/);
  assert.doesNotMatch(trlLine, /train_timestep_selection|train_kl_guard|latent_size|reward=/);
  assert.ok(out.some((l) => /^settings this project adds .*train_timestep_selection="earliest" \("random"\)/.test(l)), out.join('\n'));
  assert.ok(r.timings.totalSeconds > 0 && Object.keys(r.timings.phases).length === 6);
  const grid = decodePng(fs.readFileSync(path.join(dir, 'grid.png')));
  assert.ok(grid.width > 2 * 32 * r.grid.seeds.length && grid.height > 32 * r.eval.prompts.length);
  // progress named every phase, and the summary printed both headline figures
  for (const phase of ['generate', 'rate', 'reward', 'ddpo', 'eval', 'report']) assert.ok(progress.some((l) => l.includes(phase)), `no progress for ${phase}`);
  assert.ok(out.some((l) => /WIN RATE .*95% CI/.test(l)) && out.some((l) => /WALL TIME/.test(l)), out.join('\n'));
});

test('ddpo demo --quick --algorithm diffusion-dpo trains on the rated pairs directly: no reward model, the implicit reward accuracy per epoch, the same blind test', { skip: noModel }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-demo-'));
  const out: string[] = [], progress: string[] = [], err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), progress: (l) => progress.push(l), signal: new AbortController().signal };
  assert.equal(await runCli(['demo', '--quick', '--algorithm', 'diffusion-dpo', '--workspace', ws, '--name', 'dpo'], io, commands), 0, err.join('\n'));
  const dir = path.join(ws, '.ddpo', 'dpo');
  assert.ok(!fs.existsSync(path.join(dir, 'reward')) && !fs.existsSync(path.join(dir, 'ddpo')), 'no reward model and no DDPO run');
  const r = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as DpoDemoReport;
  assert.equal(r.algorithm, 'diffusion-dpo');
  // every decided rating of the simulated rater is a pair, trained on or held out; ties carry no preference
  const p = r.diffusionDpo.pairs;
  assert.deepEqual([p.train + p.heldOut + p.ties + p.skips + p.withoutLatents, p.ties, p.withoutLatents, p.latents], [r.ratings.ratings, r.ratings.ties, 0, 'stored']);
  const lines = readMetrics<DpoEpochMetrics>(path.join(dir, 'diffusion-dpo', 'metrics.jsonl'));
  assert.equal(lines.length, (r.settings as { dpoEpochs: number }).dpoEpochs);
  assert.deepEqual(r.diffusionDpo.curve.map((c) => c.heldOutAcc), lines.map((l) => l.held_out!.implicit_acc));
  assert.equal(lines[0].held_out!.pairs, p.heldOut);
  assert.ok(lines.every((l) => l.implicit_acc >= 0 && l.implicit_acc <= 1 && Number.isFinite(l.loss)));
  const n = r.eval.prompts.length * r.eval.seeds.length;
  assert.equal(r.eval.winRate.n, n);
  for (const phase of ['generate', 'rate', 'dpo', 'eval', 'report']) assert.ok(progress.some((l) => l.includes(phase)), `no progress for ${phase}`);
  assert.ok(!progress.some((l) => / reward /.test(l)), 'no reward phase');
  assert.ok(out.some((l) => /implicit reward accuracy on the held-out pairs/.test(l)) && out.some((l) => /WIN RATE .*95% CI/.test(l)), out.join('\n'));
});

test('ddpo demo --taste fidelity records the tiny CLIP as the experiment\'s backbone, rates by the prompt\'s shape, and names the backbone in report.json', { skip: noModel || needsTinyClip() }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-demo-'));
  const out: string[] = [], err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), progress: () => undefined, signal: new AbortController().signal };
  assert.equal(await runCli(['demo', '--quick', '--taste', 'fidelity', '--workspace', ws, '--name', 'fidelity'], io, commands), 0, err.join('\n'));
  const dir = path.join(ws, '.ddpo', 'fidelity');
  const exp = JSON.parse(fs.readFileSync(path.join(dir, 'experiment.json'), 'utf8'));
  assert.deepEqual(exp.rewardBackbone, { id: TINY_CLIP_BACKBONE_ID });
  assert.deepEqual(exp.prompts, FIDELITY_TRAIN_PROMPTS.slice(0, exp.prompts.length));
  const r = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as DemoReport;
  assert.match(r.rewardModel.backbone, /^clip:/, 'the head saw images and prompts');
  assert.match(r.rewardModel.backboneLabel ?? '', /tiny-clip \(image \+ text\)/);
  assert.ok(out.some((l) => /reward model: .*backbone: embedded tiny-clip/.test(l)), out.join('\n'));
  assert.ok(r.eval.prompts.every((p) => FIDELITY_EVAL_PROMPTS.includes(p)));
  assert.equal(typeof r.eval.winRate.rate, 'number');
  assert.ok(readRatings(dir).ratings.every((x) => x.rater === "simulated: big shapes of the prompt's shape"));
});

test('a demo told to fit an MLP reward head trains one, saves it with its card, and DDPO runs against it', { skip: noModel || needsTinyClip() }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-demo-'));
  const { report, experimentDir } = await runDemo({ ...withTaste(quickDemoOptions(ws), 'fidelity'), name: 'mlp', rewardHead: 'mlp' });
  const { card } = rewardModelFiles(experimentDir);
  assert.deepEqual([card?.head.kind, card?.head.hidden], ['mlp', 32]);
  assert.ok('ddpo' in report && report.ddpo.curve.length === 1, 'one DDPO epoch against the MLP head');
  assert.equal(report.rewardModel.heldOutAccuracy, card?.heldOut.accuracy);
});

test('a demo of two rounds rates the tuned model\'s own samples in the second, retrains the reward model on all the ratings, and DDPO goes on from its checkpoint', { skip: noModel }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-demo-'));
  const o = { ...quickDemoOptions(ws), name: 'rounds', rounds: 2, epochs: 2 };
  const { report, experimentDir: dir } = await runDemo(o);
  assert.ok('ddpo' in report);
  const ratings = readRatings(dir).ratings;
  assert.equal(ratings.length, o.pairs, 'the pairs are shared between the rounds, not doubled');
  assert.equal(report.ratings.ratings, o.pairs);
  // the second round's images were sampled by the tuned model at fresh seeds: pair folders of their own, rated
  const base = o.trainPrompts.length * o.imagesPerPrompt / 2;
  const pairs = listPairs(dir);
  assert.equal(pairs.length, 2 * base);
  const tuned = new Set(pairs.filter((p) => p.seeds[0] >= 100_000).flatMap((p) => [p.a, p.b]));
  assert.equal(tuned.size, 2 * base);
  const second = ratings.slice(o.pairs / 2);
  assert.ok(second.filter((x) => !x.repeatOf).every((x) => tuned.has(x.left) && tuned.has(x.right)), 'new pairs of the second round are of the tuned samples');
  assert.ok(ratings.slice(0, o.pairs / 2).every((x) => !tuned.has(x.left) && !tuned.has(x.right)));
  // the reward model the second round's DDPO epoch ran against learned from every rating
  const card = rewardModelFiles(dir).card!;
  assert.ok(card.data.trainComparisons > o.pairs / 2, `the reward model saw ${card.data.trainComparisons} comparisons`);
  // one epoch a round, the second resumed from the first's checkpoint (epochs 0 and 1, not 0 twice)
  assert.deepEqual(readMetrics(path.join(dir, 'ddpo', 'metrics.jsonl')).map((m) => m.epoch), [0, 1]);
  assert.deepEqual(report.ddpo.curve.map((c) => c.epoch), [0, 1]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'ddpo.json'), 'utf8')).num_epochs, 2);
});

test('the rounds share the pairs and epochs evenly, the first rounds taking what does not divide', () => {
  assert.deepEqual([0, 1].map((r) => roundShare(31, r, 2)), [16, 15]);
  assert.deepEqual([0, 1, 2].map((r) => roundShare(20, r, 3)), [7, 7, 6]);
  assert.deepEqual([0, 1, 2].map((r) => roundShare(2, r, 3)), [1, 1, 0]);
});

test('a demo of three rounds rates every pair it was asked for, repeats of the second round\'s pairs rated on their own images', { skip: noModel }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-demo-'));
  // seed 3: the third round's repeat is of a second-round pair (11 + 10 + 10 ratings)
  const o = { ...quickDemoOptions(ws), name: 'rounds3', rounds: 3, epochs: 3, pairs: 31, seed: 3 };
  const { report, experimentDir: dir } = await runDemo(o);
  const ratings = readRatings(dir).ratings;
  assert.equal(ratings.length, 31);
  assert.equal(report.ratings.ratings, 31);
  // the third round (the last 10) repeats earlier decisive pairs with sides swapped, some of them the second round's
  const byId = new Map(ratings.map((r) => [r.id, r]));
  const third = ratings.slice(21).filter((r) => r.repeatOf);
  const index = new Map(ratings.map((r, i) => [r.id, i]));
  assert.ok(third.some((r) => index.get(r.repeatOf!)! >= 11), 'the third round repeats a pair of the second');
  for (const r of third) assert.deepEqual([r.left, r.right], [byId.get(r.repeatOf!)!.right, byId.get(r.repeatOf!)!.left]);
  assert.equal(listPairs(dir).length, 3 * o.trainPrompts.length * o.imagesPerPrompt / 2);
});

test('ddpo demo with 4 DDPO epochs (seed 0): the tuned model wins the blind test, judged with the tuned image on either side', { skip: noModel }, async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-demo-'));
  const err: string[] = [];
  const io: CliIO = { out: () => undefined, err: (l) => err.push(l), progress: () => undefined, signal: new AbortController().signal };
  assert.equal(await runCli(['demo', '--epochs', '4', '--seed', '0', '--workspace', ws, '--name', 'learns'], io, commands), 0, err.join('\n'));
  const r = JSON.parse(fs.readFileSync(path.join(ws, '.ddpo', 'learns', 'report.json'), 'utf8')) as DemoReport;
  const n = r.eval.judgements.length;
  const left = r.eval.judgements.filter((j) => j.tunedSide === 'left').length;
  const summary = `${r.eval.wins} wins, ${r.eval.losses} losses, ${r.eval.ties} ties; win rate ${r.eval.winRate.rate.toFixed(3)} (95% CI ${r.eval.winRate.low.toFixed(3)}-${r.eval.winRate.high.toFixed(3)}); tuned shown left ${left} of ${n}`;
  // the blind judge saw the tuned image on both sides, about equally often
  assert.ok(left >= 0.3 * n && left <= 0.7 * n, summary);
  // the rater's true taste, not only the learned reward, prefers the tuned images, and the blind test says so
  assert.ok(r.eval.meanUtilityTuned > r.eval.meanUtilityBase, `true utility: tuned ${r.eval.meanUtilityTuned} vs base ${r.eval.meanUtilityBase}`);
  assert.ok(r.eval.winRate.low > 0.5, summary);
});
