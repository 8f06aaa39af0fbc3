/**
 * How well reward heads learn the fidelity taste (`ddpo demo --taste fidelity`), per backbone and head, in seconds
 * instead of a demo's minutes: each seed runs only the demo's first two phases (base images of the fidelity prompts,
 * then the simulated rater's 300 ratings), and every backbone x head is trained on those same ratings exactly as the
 * demo trains its reward model and scored on the same held-out pairs. Besides the heads, it prints
 * - the ceiling: the rater's own utility scored on those held-out ratings (a model that knew the taste exactly);
 * - a diagnosis per backbone (`+ shape verdict`): the same linear head with one more input, whether the geometric test
 *   finds the prompt's shape. How far it lifts a backbone is what that backbone's view of the shape costs;
 * - the linear head with its L1 penalty chosen per seed by 5-fold cross-validation of the training comparisons;
 * - the same with another judge's verdict (`+ outline-profile verdict`): a shape judge made apart from the rater's test
 *   (the outline's 3- and 4-fold waviness around the centroid, its cuts halfway between the clean shapes' means), to see
 *   what a backbone that saw shapes well, but not exactly as the rater does, could reach;
 * - for a backbone with a text tower, how often its zero-shot choice among the prompt and the prompt with each other
 *   shape agrees with the geometric test, over every rated base image: how well it sees the shape DDPO must keep.
 * Usage: node --import tsx scripts/measure-fidelity-heads.ts [--seeds 0,1,2,3,4] [--backbones builtin,embedded:tiny-clip,DIR]
 *        [--workspace DIR] [--pairs 300]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDdpoConfig, settingsFor } from '../src/core/ddpo/config';
import { createOnnxPolicy } from '../src/core/ddpo/onnxPolicy';
import { generateSamples } from '../src/core/demo/pairs';
import { createDemoExperiment, rateDemoSamples } from '../src/core/demo/run';
import { demoDdpoSettings, fullDemoOptions, withTaste } from '../src/core/demo/settings';
import { tasteUtility } from '../src/core/demo/taste';
import { embeddedModelDir } from '../src/core/experiment/modelDir';
import { ExperimentStore } from '../src/core/experiment/store';
import { resolveInside } from '../src/core/fsutil';
import { loadImageRGB, type Backbone } from '../src/core/reward/backbone';
import { fitRewardHead, HELD_OUT_SHARE, heldOutUtilityAccuracy, isHeldOut, ratingsToExamples, trainExperimentReward, type RatedExample, type TrainRewardOptions } from '../src/core/reward/experiment';
import { pairMetrics } from '../src/core/reward/metrics';
import { meanLoss } from '../src/core/reward/trainer';
import { openBackbone } from '../src/core/reward/openBackbone';
import { readRatings } from '../src/core/reward/store';
import { cosine } from '../src/core/reward/headInput';
import { fitShape, promptShape } from '../src/core/tiny/fidelity';
import { SHAPES } from '../src/core/tiny/scenes';
import { outlineProfileJudge, type ShapeJudge } from './shapeJudges';

const { values } = parseArgs({ options: { seeds: { type: 'string' }, backbones: { type: 'string' }, workspace: { type: 'string' }, pairs: { type: 'string' } } });
const seeds = (values.seeds ?? '0,1,2,3,4').split(',').map(Number);
const specs = (values.backbones ?? 'builtin,embedded:tiny-clip').split(',');
const workspace = path.resolve(values.workspace ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fidelity-heads-')));
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const HEADS: Record<string, TrainRewardOptions> = { 'linear, L1 0.3 (the demo\'s)': { l1: 0.3 }, 'MLP, 32 hidden': { kind: 'mlp' as const, hidden: 32 } };

// Phases 1 and 2 of the fidelity demo for one seed (src/core/demo/run.ts), into experiment `s<seed>`; reused when there.
async function rated(seed: number): Promise<string> {
  const dir = new ExperimentStore(workspace).dirOf(`s${seed}`);
  if (fs.existsSync(path.join(dir, 'ratings.jsonl'))) return dir;
  const o = { ...withTaste(fullDemoOptions(workspace), 'fidelity'), seed, ...(values.pairs ? { pairs: Number(values.pairs) } : {}) };
  const modelDir = embeddedModelDir();
  await createDemoExperiment(o, modelDir, `s${seed}`);
  const config = settingsFor(parseDdpoConfig(demoDdpoSettings(o), 'ddpo.json').config, 'ddpo', 'ddpo.json');
  const policy = await createOnnxPolicy(modelDir, config, {});
  try {
    rateDemoSamples(o, dir, await generateSamples(policy, dir, o.trainPrompts, o.imagesPerPrompt, { steps: o.steps, guidance: o.guidance, eta: config.sample_eta, seed }));
  } finally {
    await policy.release?.();
  }
  return dir;
}

// The demo's linear head on the backbone's inputs plus a shape judge's verdict on each image (1: the prompt's shape).
async function withShapeVerdict(dir: string, backbone: Backbone, seed: number, judge: ShapeJudge): Promise<number> {
  const { examples } = await ratingsToExamples(dir, readRatings(dir), backbone);
  const verdict = (rel: string, prompt: string) => (judge(loadImageRGB(resolveInside(dir, rel))) === promptShape(prompt) ? 1 : 0);
  const xs: RatedExample[] = examples.map((e) => ({ ...e, left: Float32Array.of(...e.left, verdict(e.rating.left, e.rating.prompt)), right: Float32Array.of(...e.right, verdict(e.rating.right, e.rating.prompt)) }));
  const fit = await fitRewardHead(xs.filter((e) => !isHeldOut(e.rating.pairId, HELD_OUT_SHARE)), { seed, l1: 0.3 });
  return pairMetrics(fit.head, xs.filter((e) => isHeldOut(e.rating.pairId, HELD_OUT_SHARE))).accuracy;
}

// The linear head with the L1 penalty whose 5-fold cross-validated log-loss on the training comparisons is lowest.
async function crossValidatedL1(dir: string, backbone: Backbone, seed: number): Promise<{ l1: number; accuracy: number }> {
  const { examples } = await ratingsToExamples(dir, readRatings(dir), backbone);
  const train = examples.filter((e) => !isHeldOut(e.rating.pairId, HELD_OUT_SHARE)), K = 5;
  let best = { l1: 0, loss: Infinity };
  for (const l1 of [0, 0.03, 0.1, 0.3, 1]) {
    let loss = 0;
    for (let k = 0; k < K; k++) {
      const fold = train.filter((_, i) => i % K === k);
      loss += meanLoss((await fitRewardHead(train.filter((_, i) => i % K !== k), { seed, l1 })).head, fold) * fold.length;
    }
    if (loss < best.loss) best = { l1, loss };
  }
  const fit = await fitRewardHead(train, { seed, l1: best.l1 });
  return { l1: best.l1, accuracy: pairMetrics(fit.head, examples.filter((e) => isHeldOut(e.rating.pairId, HELD_OUT_SHARE))).accuracy };
}

// The share of rated base images whose nearest caption, among the prompt with each shape, names the shape the geometric test finds.
async function zeroShotAgreement(dirs: string[], backbone: Backbone): Promise<number> {
  let n = 0, agree = 0;
  const captions = new Map<string, Float32Array[]>();
  for (const dir of dirs) {
    const seen = new Map<string, string>();
    for (const r of readRatings(dir).ratings) for (const rel of [r.left, r.right]) seen.set(rel, r.prompt);
    for (const [rel, prompt] of seen) {
      const wanted = promptShape(prompt);
      if (!wanted) continue;
      const img = loadImageRGB(resolveInside(dir, rel));
      const [u] = await backbone.embed([img]);
      if (!captions.has(prompt)) captions.set(prompt, await backbone.text!.embed(SHAPES.map((s) => prompt.replace(wanted, s))));
      const sims = captions.get(prompt)!.map((t) => cosine(u, t));
      n++;
      if (SHAPES[sims.indexOf(Math.max(...sims))] === fitShape(img)?.shape) agree++;
    }
  }
  return agree / n;
}

// The share of rated base images on which two judges name the same shape.
function judgesAgree(dirs: string[], a: ShapeJudge, b: ShapeJudge): number {
  let n = 0, same = 0;
  for (const dir of dirs) {
    const seen = new Set(readRatings(dir).ratings.flatMap((r) => [r.left, r.right]));
    for (const rel of seen) {
      const img = loadImageRGB(resolveInside(dir, rel));
      n++;
      if (a(img) === b(img)) same++;
    }
  }
  return same / n;
}

async function main(): Promise<void> {
  const dirs = new Map<number, string>();
  for (const seed of seeds) dirs.set(seed, await rated(seed));
  const geometric: ShapeJudge = (img) => fitShape(img)?.shape;
  const profile = outlineProfileJudge();
  console.log(`outline-profile judge (cuts ${profile.cuts}): agrees with the geometric test on ${pct(judgesAgree([...dirs.values()], geometric, profile.judge))} of the rated base images`);
  const rows: Array<[string, number[]]> = [['ceiling: the rater\'s own utility', seeds.map((s) => heldOutUtilityAccuracy(dirs.get(s)!, tasteUtility('fidelity')))]];
  for (const spec of specs) {
    const backbone = await openBackbone(spec);
    try {
      const heads: Array<[string, TrainRewardOptions]> = [...Object.entries(HEADS), ...(backbone.text ? [['linear, L1 0.3, warm from clip_score', { l1: 0.3, prior: 'clip_score' }] as [string, TrainRewardOptions]] : [])];
      for (const [head, fit] of heads) {
        const accs: number[] = [];
        for (const seed of seeds) accs.push((await trainExperimentReward(dirs.get(seed)!, { backbone, seed, prior: 'none', ...fit })).card.heldOut.accuracy);
        rows.push([`${backbone.label ?? spec}, ${head}`, accs]);
        console.log(`${rows[rows.length - 1][0]}: ${accs.map(pct).join(' ')}`);
      }
      const cv = [];
      for (const seed of seeds) cv.push(await crossValidatedL1(dirs.get(seed)!, backbone, seed));
      rows.push([`${backbone.label ?? spec}, linear, L1 by cross-validation (${cv.map((c) => c.l1).join(', ')})`, cv.map((c) => c.accuracy)]);
      for (const [name, judge] of [['shape verdict', geometric], ['outline-profile verdict', profile.judge]] as const) {
        const diag: number[] = [];
        for (const seed of seeds) diag.push(await withShapeVerdict(dirs.get(seed)!, backbone, seed, judge));
        rows.push([`${backbone.label ?? spec}, linear + ${name} (diagnosis)`, diag]);
      }
      if (backbone.text) console.log(`${backbone.label ?? spec}: zero-shot shape agrees with the geometric test on ${pct(await zeroShotAgreement([...dirs.values()], backbone))} of the rated base images`);
    } finally {
      await backbone.dispose?.();
    }
  }
  console.log(`\n| reward head held-out accuracy | ${seeds.map((s) => `seed ${s}`).join(' | ')} | mean |\n|---|${seeds.map(() => '---').join('|')}|---|`);
  for (const [name, accs] of rows) console.log(`| ${name} | ${accs.map(pct).join(' | ')} | **${pct(mean(accs))}** |`);
  console.log(`\n(workspace ${workspace})`);
}

main().catch((e) => { console.error((e as Error).stack ?? (e as Error).message); process.exit(1); });
