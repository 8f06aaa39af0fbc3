/** `ddpo demo`: a simulated person teaches the embedded model a taste it did not have, end to end, with a blind test. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_DDPO_CONFIG, isTrlSetting, parseDdpoConfig, settingsFor, type DdpoConfig } from '../ddpo/config';
import { createDpoPolicy } from '../ddpo/dpoPolicy';
import { trainExperiment } from '../ddpo/experimentRun';
import { ddpoLayout } from '../ddpo/layout';
import { isDpoMetrics } from '../ddpo/metrics';
import { createOnnxPolicy } from '../ddpo/onnxPolicy';
import { makeReward } from '../ddpo/rewards';
import type { LoraPolicyBase, Policy, PreferencePolicy } from '../ddpo/types';
import { assertModelPresent, embeddedModelDir } from '../experiment/modelDir';
import { withRunLock } from '../experiment/runLock';
import { ExperimentStore } from '../experiment/store';
import { atomicWriteFile } from '../fsutil';
import { encodePng } from '../image/png';
import { backboneRefFromSpec } from '../reward/backboneRef';
import { trainExperimentReward } from '../reward/experiment';
import type { SimulatedRater } from '../reward/sim';
import { judgeBlind, renderEvalSet, type BlindResult, type EvalImages } from './blindEval';
import { composeGrid, GRID_LAYOUT } from './grid';
import { generateSamples, rateSamples, type GeneratedSamples, type RatingSummary, type SampleSettings } from './pairs';
import { DEMO_PHASES, DPO_DEMO_PHASES, PhaseClock, type DemoProgress } from './progress';
import { DEMO_TARGETS, type AnyDemoReport, type DemoCurvePoint, type DemoReport, type DemoReportCommon, type DpoCurvePoint, type DpoDemoReport } from './report';
import { demoBackbone, demoDdpoSettings, EVAL_SEED_BASE, type DemoOptions } from './settings';
import { makeDemoRater, RATER_NAMES, TASTE_DESCRIPTIONS, tasteReadsPrompt, tasteUtility } from './taste';

/** Hooks of {@link runDemo}. */
export interface DemoHooks {
  onProgress?: (p: DemoProgress) => void;
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

/** What a finished demo wrote. */
export interface DemoResult {
  report: AnyDemoReport;
  experimentDir: string;
  reportFile: string;
  gridFile: string;
}

/**
 * Runs the phases (generate, rate, then reward and ddpo, or dpo for Diffusion-DPO, then eval, report) and writes
 * report.json and grid.png.
 */
export async function runDemo(o: DemoOptions, h: DemoHooks = {}): Promise<DemoResult> {
  const modelDir = o.modelDir ?? embeddedModelDir();
  assertModelPresent(modelDir);
  const name = o.name ?? `demo-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}`;
  const dir = await createDemoExperiment(o, modelDir, name);
  // held for the whole demo; the reward and DDPO training it runs inside are part of it
  return withRunLock(dir, 'ddpo demo', () => runPhases(o, h, modelDir, dir), h.onLog);
}

/** Creates the demo's experiment `name` under `o.workspace` (its model, prompts, reward backbone, sampling) and returns its folder. */
export async function createDemoExperiment(o: DemoOptions, modelDir: string, name: string): Promise<string> {
  const store = new ExperimentStore(o.workspace);
  await store.create(name, {
    baseModel: { id: 'tiny-shapes', path: modelDir }, prompts: [...o.trainPrompts], rewardBackbone: backboneRefFromSpec(o.backbone ?? demoBackbone(o.taste)),
    rewardPrior: o.rewardPrior, settings: { steps: o.steps, guidanceScale: o.guidance, imageSize: 32, seed: o.seed, demo: true },
  });
  return store.dirOf(name);
}

// Everything after the experiment exists: the phases and the report.
async function runPhases(o: DemoOptions, h: DemoHooks, modelDir: string, dir: string): Promise<DemoResult> {
  const dpo = o.algorithm === 'diffusion-dpo';
  const clock = new PhaseClock(h.onProgress, dpo ? DPO_DEMO_PHASES : DEMO_PHASES);
  const log = h.onLog ?? (() => undefined);
  const settings = demoDdpoSettings(o);
  const file = ddpoLayout(dir).configFile;
  await atomicWriteFile(file, JSON.stringify(settings, null, 2) + '\n');
  const config = settingsFor(parseDdpoConfig(settings, file).config, o.algorithm, file);
  log(`experiment ${dir} on ${modelDir}`);
  log(`taste of the simulated rater: ${TASTE_DESCRIPTIONS[o.taste]}`);

  const run: DemoRun = { o, h, dir, clock, log, config, settings, sampling: { steps: o.steps, guidance: o.guidance, eta: config.sample_eta, signal: h.signal } };
  clock.start('generate', 'loading the model');
  const policy: LoraPolicyBase = dpo ? await createDpoPolicy(modelDir, config, { threads: o.threads }) : await createOnnxPolicy(modelDir, config, { threads: o.threads });
  try {
    const rated = await generateAndRate(run, policy);
    const trained = dpo ? await dpoPhase(run, policy as PreferencePolicy) : await ddpoPhase(run, policy as Policy, rated);
    // 5. Blind evaluation with the rater's true taste and noise.
    clock.start('eval', 'rendering tuned images');
    const tuned = await renderEvalSet(policy, o.evalPrompts, EVAL_SEED_BASE, o.evalSeeds, {
      ...run.sampling, onRow: (d, n) => clock.report(d, `${d}/${n} held-out prompts rendered with the tuned model`, n),
    });
    const blind = judgeDemoBlind(o, rated, tuned);
    return await writeReport(run, modelDir, rated, tuned, blind, trained);
  } finally {
    await policy.release?.();
  }
}

/**
 * Phase 5's judgement: the rater of `o`'s taste, its noise set on the rated samples' utilities (`rated`), shown the
 * held-out base and tuned images of each prompt and seed with sides shuffled.
 */
export function judgeDemoBlind(o: DemoOptions, rated: Pick<Rated, 'base' | 'utils' | 'typicalPrompts'>, tuned: EvalImages): BlindResult {
  const judge = makeDemoRater({ taste: o.taste, typicalUtilities: rated.utils, typicalPrompts: rated.typicalPrompts, seed: o.seed + 3 });
  return judgeBlind(judge, o.evalPrompts, EVAL_SEED_BASE, rated.base, tuned, o.seed + 4);
}

// The demo's state that every phase reads.
interface DemoRun {
  o: DemoOptions;
  h: DemoHooks;
  dir: string;
  clock: PhaseClock;
  log: (line: string) => void;
  config: DdpoConfig;
  /** ddpo.json as the demo wrote it. */
  settings: Record<string, unknown>;
  sampling: SampleSettings & { signal?: AbortSignal };
}

/**
 * What phases 1 and 2 leave: the held-out base images, the rated samples' utilities and the ratings' tally.
 * `typicalPrompts`: the rated samples' prompts, for a taste that reads the prompt.
 */
export interface Rated {
  base: EvalImages; utils: number[]; typicalPrompts?: string[]; summary: RatingSummary;
  /** The rater (its settings go in the report), kept for later rounds: its noise stays set on the base samples and its draws go on. */
  rater: SimulatedRater;
  /** Every round's rated samples so far, the base model's first. */
  samples: GeneratedSamples[];
}

// Phases 1 and 2: base-model samples to rate (and the base images of the held-out set, rendered while the LoRA is
// zero), then the simulated rater rates same-prompt pairs (the first round's share of them).
async function generateAndRate(run: DemoRun, policy: Pick<Policy, 'sample'>): Promise<Rated> {
  const { o, clock, dir } = run;
  const nImages = o.trainPrompts.length * o.imagesPerPrompt + o.evalPrompts.length * o.evalSeeds;
  const samples = await generateSamples(policy, dir, o.trainPrompts, o.imagesPerPrompt, {
    ...run.sampling, seed: o.seed, onImages: (d) => clock.report(d, `${d}/${nImages} base images`, nImages),
  });
  const base = await renderEvalSet(policy, o.evalPrompts, EVAL_SEED_BASE, o.evalSeeds, {
    ...run.sampling, onRow: (d) => clock.report(samples.images.length + d * o.evalSeeds, `${samples.images.length + d * o.evalSeeds}/${nImages} base images`, nImages),
  });
  run.log(`generated ${samples.images.length} images of ${o.trainPrompts.length} training prompts and ${o.evalPrompts.length * o.evalSeeds} held-out base images`);
  const pairs = roundShare(o.pairs, 0, roundsOf(o));
  clock.start('rate', `${pairs} pairs`);
  const rated = rateDemoSamples(o, dir, samples, (d) => clock.report(d, `${d}/${pairs} pairs rated`, pairs), pairs);
  const { summary } = rated;
  run.log(`rated ${summary.ratings} pairs into ratings.jsonl (left ${summary.left}, right ${summary.right}, ties ${summary.ties}, repeats ${summary.repeats})`);
  return { base, ...rated };
}

/**
 * Phase 2: the simulated rater of `o`'s taste, its noise set on these samples' utilities, rates `pairs` (default
 * `o.pairs`) pairs of them into `<dir>/ratings.jsonl`.
 */
export function rateDemoSamples(o: DemoOptions, dir: string, samples: GeneratedSamples, onRated?: (done: number, total: number) => void, pairs = o.pairs): Omit<Rated, 'base'> {
  const utility = tasteUtility(o.taste);
  const utils = samples.images.map((img, i) => utility(img, samples.refs[i].prompt));
  const typicalPrompts = tasteReadsPrompt(o.taste) ? samples.refs.map((r) => r.prompt) : undefined;
  const rater = makeDemoRater({ taste: o.taste, typicalUtilities: utils, typicalPrompts, seed: o.seed + 1 });
  const summary = rateSamples(dir, samples, rater, pairs, o.seed + 2, onRated, RATER_NAMES[o.taste]);
  return { utils, typicalPrompts, summary, rater, samples: [samples] };
}

/** The demo's rounds (rate, train the reward model, fine-tune), at least 1. */
function roundsOf(o: DemoOptions): number {
  return Math.max(1, o.rounds ?? 1);
}

/** Round `r`'s share (of `rounds`) of `total` rated pairs or epochs: even shares, the first rounds taking what does not divide. */
export function roundShare(total: number, r: number, rounds: number): number {
  return Math.floor(total / rounds) + (r < total % rounds ? 1 : 0);
}

// What the training phase adds to the report.
type Trained = Pick<DemoReport, 'rewardModel' | 'ddpo'> | Pick<DpoDemoReport, 'diffusionDpo'>;

// Phases 3 and 4 of the DDPO demo: a reward model learns the rater from the ratings alone, then DDPO against it. With
// more than one round, the rater then rates samples of the tuned model (what DDPO made of the reward), the reward model
// retrains on all the ratings, and DDPO goes on from where it stopped: the loop a person runs in the studio.
async function ddpoPhase(run: DemoRun, policy: Policy, rated: Rated): Promise<Trained> {
  const { o, clock, dir, log, config } = run;
  const rounds = roundsOf(o);
  const curve: DemoCurvePoint[] = [];
  let stoppedEarly: string | undefined;
  let card: Awaited<ReturnType<typeof trainExperimentReward>>['card'] | undefined;
  for (let r = 0, epochs = 0; r < rounds && !stoppedEarly; r++) {
    if (r > 0) await rateTunedSamples(run, policy, rated, r);
    clock.start('reward', rounds > 1 ? `training the reward model (round ${r + 1} of ${rounds})` : 'training the reward model');
    ({ card } = await trainExperimentReward(dir, { seed: o.seed, l1: o.rewardL1, kind: o.rewardHead, onProgress: (line) => clock.report(0.5, line) }));
    log(`reward model${rounds > 1 ? ` (round ${r + 1} of ${rounds})` : ''}: ${card.summary}`);
    epochs += roundShare(config.num_epochs, r, rounds);
    clock.start('ddpo', rounds > 1 ? `epochs to ${epochs} of ${config.num_epochs}` : `${config.num_epochs} epochs`);
    // a later round goes on to its share of the epochs: ddpo.json says how far, as a person would edit it
    if (rounds > 1) await atomicWriteFile(ddpoLayout(dir).configFile, JSON.stringify({ ...run.settings, num_epochs: epochs }, null, 2) + '\n');
    const done = await fineTune(policy, { ...config, num_epochs: epochs }, dir, clock, log, run.h.signal, r > 0);
    curve.push(...done.curve);
    stoppedEarly = done.stoppedEarly;
  }
  const last = card!; // every demo has a first round
  return {
    rewardModel: {
      backbone: last.backbone, backboneLabel: last.backboneLabel, heldOutAccuracy: last.heldOut.accuracy, heldOutDecisive: last.heldOut.decisive, trainComparisons: last.data.trainComparisons,
      learningCurve: last.learningCurve.map((p) => ({ comparisons: p.comparisons, accuracy: p.accuracy })), summary: last.summary,
    },
    ddpo: { curve, settings: demoDdpoSettings(o), ...deviations(config), checkpointDir: path.relative(dir, ddpoLayout(dir).checkpointsDir), ...(stoppedEarly ? { stoppedEarly } : {}) },
  };
}

// Round r (from 1) of the loop: the tuned policy samples the training prompts at fresh seeds, and the same rater rates
// its share of the pairs of them (repeats may be of earlier rounds' pairs).
async function rateTunedSamples(run: DemoRun, policy: Policy, rated: Rated, r: number): Promise<void> {
  const { o, clock, dir, log } = run;
  const nImages = o.trainPrompts.length * o.imagesPerPrompt;
  clock.start('rate', `round ${r + 1}: ${nImages} images of the tuned model`);
  const samples = await generateSamples(policy, dir, o.trainPrompts, o.imagesPerPrompt, {
    ...run.sampling, seed: o.seed + ROUND_SEED_STRIDE * r, onImages: (d) => clock.report(d / nImages / 2, `${d}/${nImages} images of the tuned model`),
  });
  const pairs = roundShare(o.pairs, r, roundsOf(o));
  const summary = rateSamples(dir, samples, rated.rater, pairs, o.seed + 2 + ROUND_SEED_STRIDE * r, (d) => clock.report(0.5 + d / pairs / 2, `${d}/${pairs} pairs rated`), RATER_NAMES[o.taste], rated.samples);
  rated.samples.push(samples);
  for (const k of ['ratings', 'left', 'right', 'ties', 'repeats'] as const) rated.summary[k] += summary[k];
  log(`round ${r + 1}: rated ${summary.ratings} pairs of the tuned model's samples (left ${summary.left}, right ${summary.right}, ties ${summary.ties}, repeats ${summary.repeats})`);
}

/** Later rounds' rating samples take seeds this far apart (under {@link EVAL_SEED_BASE} for up to 8 rounds). */
const ROUND_SEED_STRIDE = 100_000;

// Phase 3 of the Diffusion-DPO demo: the LoRA learns from the rated pairs directly, no reward model.
async function dpoPhase(run: DemoRun, policy: PreferencePolicy): Promise<Trained> {
  const { o, clock, dir, log, config } = run;
  clock.start('dpo', `${config.num_epochs} epochs`);
  const curve: DpoCurvePoint[] = [];
  let pairs: DpoDemoReport['diffusionDpo']['pairs'] | undefined;
  await trainExperiment(dir, {
    policy, signal: run.h.signal, algorithm: 'diffusion-dpo',
    onLog: (line) => { if (/^(warning:|Diffusion-DPO on )/.test(line)) log(line); },
    onProgress: (p) => clock.report(p.epoch + (p.phase === 'done' ? 1 : p.total > 0 ? p.done / p.total : 0), `epoch ${p.epoch + 1}/${p.numEpochs} ${p.phase} ${p.done}/${p.total}`, p.numEpochs),
    onEpoch: (m) => {
      if (!isDpoMetrics(m)) return;
      pairs = { train: m.data.train, heldOut: m.data.held_out, ties: m.data.ties, skips: m.data.skips, withoutLatents: m.data.without_latents, latents: m.data.latents };
      curve.push({ epoch: m.epoch, loss: m.loss, implicitAcc: m.implicit_acc, ...(m.held_out ? { heldOutAcc: m.held_out.implicit_acc } : {}), seconds: m.seconds.total });
      const ho = m.held_out ? `, held-out ${(100 * m.held_out.implicit_acc).toFixed(1)}%` : '';
      log(`Diffusion-DPO epoch ${m.epoch + 1}/${config.num_epochs}: loss ${m.loss.toFixed(4)}, implicit reward accuracy ${(100 * m.implicit_acc).toFixed(1)}%${ho}, ${m.seconds.total.toFixed(1)} s`);
    },
  });
  const effective = Object.fromEntries(Object.keys(config.diffusion_dpo).map((k) => [k, (config as unknown as Record<string, unknown>)[k]]));
  return {
    diffusionDpo: {
      curve, settings: demoDdpoSettings(o), effective, checkpointDir: path.relative(dir, ddpoLayout(dir, 'diffusion-dpo').checkpointsDir),
      pairs: pairs ?? { train: 0, heldOut: 0, ties: 0, skips: 0, withoutLatents: 0, latents: 'unknown' },
    },
  };
}

// Phase 6: report.json and grid.png.
async function writeReport(run: DemoRun, modelDir: string, rated: Rated, tuned: EvalImages, blind: BlindResult, trained: Trained): Promise<DemoResult> {
  const { o, clock, dir } = run;
  clock.start('report', 'writing report.json and grid.png');
  const outDir = path.resolve(o.out ?? dir);
  fs.mkdirSync(outDir, { recursive: true });
  const cols = Math.min(o.gridColumns, o.evalSeeds);
  const gridFile = path.join(outDir, 'grid.png');
  await atomicWriteFile(gridFile, encodePng(composeGrid(rated.base.map((b, p) => ({ base: b.slice(0, cols), tuned: tuned[p].slice(0, cols) }))), { layout: GRID_LAYOUT, software: 'DDPO Studio demo' }));
  const { utils } = rated;
  const q = [...utils].sort((a, b) => a - b);
  const quart = (f: number) => q[Math.min(q.length - 1, Math.floor(f * q.length))];
  const evalSeeds = Array.from({ length: o.evalSeeds }, (_, k) => EVAL_SEED_BASE + k);
  const evalPart = { prompts: [...o.evalPrompts], seeds: evalSeeds, wins: blind.wins, losses: blind.losses, ties: blind.ties, skips: blind.skips, winRate: blind.winRate, meanUtilityBase: blind.meanUtilityBase, meanUtilityTuned: blind.meanUtilityTuned, judgements: blind.judgements };
  const learned = 'ddpo' in trained ? await learnedRewardMeans(dir, o.evalPrompts, rated.base, tuned) : undefined;
  clock.finish();
  const total = clock.elapsed();
  const common: DemoReportCommon = {
    format: 'ddpo-demo-report', version: 1, createdAt: new Date().toISOString(), experimentDir: dir, model: modelDir, taste: TASTE_DESCRIPTIONS[o.taste],
    baseModel: { samples: utils.length, utilityMean: utils.reduce((s, x) => s + x, 0) / utils.length, utilityQuartiles: [quart(0.25), quart(0.5), quart(0.75)] },
    ratings: { ...rated.summary, raterConsistency: rated.rater.opts.consistency, raterTieRate: rated.rater.opts.tieRate ?? 0 },
    eval: evalPart,
    grid: { file: path.relative(outDir, gridFile), layout: GRID_LAYOUT, seeds: evalSeeds.slice(0, cols) },
    timings: { phases: { ...clock.seconds }, totalSeconds: total },
    targets: { ...DEMO_TARGETS, timeMet: total <= DEMO_TARGETS.maxSeconds, winRateMet: blind.winRate.rate >= DEMO_TARGETS.minWinRate },
    settings: { ...o, ddpo: undefined },
  };
  const report: AnyDemoReport = 'diffusionDpo' in trained
    ? { ...common, algorithm: 'diffusion-dpo', diffusionDpo: trained.diffusionDpo }
    : { ...common, algorithm: 'ddpo', rewardModel: trained.rewardModel, ddpo: trained.ddpo, eval: { ...evalPart, ...learned! } };
  const reportFile = path.join(outDir, 'report.json');
  await atomicWriteFile(reportFile, JSON.stringify(report, null, 2) + '\n');
  return { report, experimentDir: dir, reportFile, gridFile };
}

// The learned reward model's mean score on the base and tuned held-out images (what DDPO optimised).
async function learnedRewardMeans(dir: string, prompts: readonly string[], base: EvalImages, tuned: EvalImages): Promise<{ learnedRewardBase: number; learnedRewardTuned: number }> {
  const learned = await makeReward('learned', dir);
  try {
    const meanOf = async (rows: EvalImages) => {
      const r = await learned(rows.flat(), rows.flatMap((row, p) => row.map(() => prompts[p])), []);
      return r.reduce((s, x) => s + x, 0) / Math.max(1, r.length);
    };
    return { learnedRewardBase: await meanOf(base), learnedRewardTuned: await meanOf(tuned) };
  } finally {
    await learned.release?.();
  }
}

// Phase 4: DDPO epochs on the learned reward, progress per sampling batch and PPO step.
async function fineTune(policy: Policy, config: DdpoConfig, dir: string, clock: PhaseClock, log: (l: string) => void, signal?: AbortSignal, resume = false): Promise<{ curve: DemoCurvePoint[]; stoppedEarly?: string }> {
  const curve: DemoCurvePoint[] = [];
  const phaseShare = { eval: 0, sample: 0, reward: 0.5, train: 0.5, held_out: 1, checkpoint: 1, done: 1 } as const;
  // The demo's policy is passed in: it renders the tuned images of the blind evaluation afterwards.
  const result = await trainExperiment(dir, {
    policy, signal, algorithm: 'ddpo', resume,
    onProgress: (p) => {
      const within = p.total > 0 ? p.done / p.total : 1;
      const frac = p.phase === 'sample' ? within * 0.5 : p.phase === 'train' ? 0.5 + within * 0.5 : phaseShare[p.phase];
      clock.report(p.epoch + frac, `epoch ${p.epoch + 1}/${p.numEpochs} ${p.phase} ${p.done}/${p.total}`, p.numEpochs);
    },
    onEpoch: (m) => {
      if (isDpoMetrics(m)) return;
      curve.push({ epoch: m.epoch, reward_mean: m.reward_mean, reward_std: m.reward_std, approx_kl: m.approx_kl, clipfrac: m.clipfrac, seconds: m.seconds.total });
      log(`DDPO epoch ${m.epoch + 1}/${config.num_epochs}: learned reward ${m.reward_mean.toFixed(4)} ± ${m.reward_std.toFixed(4)}, kl ${m.approx_kl.toExponential(2)}, clipfrac ${m.clipfrac.toFixed(3)}, ${m.seconds.total.toFixed(1)} s`);
    },
  });
  if (result.stoppedEarly) log(`DDPO ${result.stoppedEarly.message}`);
  return { curve, stoppedEarly: result.stoppedEarly?.message };
}

// The settings where the demo departs from the defaults (printed and recorded): TRL's DDPOConfig keys against TRL's
// defaults, the keys this project adds against ours. The run's name, seed and checkpoint spacing are no tuning.
function deviations(c: DdpoConfig): Pick<DemoReport['ddpo'], 'deviationsFromTrl' | 'projectSettings'> {
  const skip = new Set(['exp_name', 'save_freq', 'seed', 'algorithm', 'beta_dpo', 'diffusion_dpo']);
  const out: Pick<DemoReport['ddpo'], 'deviationsFromTrl' | 'projectSettings'> = { deviationsFromTrl: {}, projectSettings: {} };
  for (const [k, v] of Object.entries(c)) {
    const d = (DEFAULT_DDPO_CONFIG as unknown as Record<string, unknown>)[k];
    if (skip.has(k) || JSON.stringify(d) === JSON.stringify(v)) continue;
    if (isTrlSetting(k)) out.deviationsFromTrl[k] = { trl: d, demo: v };
    else out.projectSettings[k] = { default: d, demo: v };
  }
  return out;
}
