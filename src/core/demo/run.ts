/** `ddpo demo`: a simulated person teaches the embedded model a taste it did not have, end to end, with a blind test. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_DDPO_CONFIG, isTrlSetting, parseDdpoConfig, type DdpoConfig } from '../ddpo/config';
import { trainExperiment } from '../ddpo/experimentRun';
import { ddpoLayout } from '../ddpo/layout';
import { createOnnxPolicy } from '../ddpo/onnxPolicy';
import { makeReward } from '../ddpo/rewards';
import type { Policy } from '../ddpo/types';
import { assertModelPresent, embeddedModelDir } from '../experiment/modelDir';
import { withRunLock } from '../experiment/runLock';
import { ExperimentStore } from '../experiment/store';
import { atomicWriteFile } from '../fsutil';
import { encodePng } from '../image/png';
import { backboneRefFromSpec } from '../reward/backboneRef';
import { trainExperimentReward } from '../reward/experiment';
import { judgeBlind, renderEvalSet } from './blindEval';
import { composeGrid, GRID_LAYOUT } from './grid';
import { generateSamples, rateSamples } from './pairs';
import { PhaseClock, type DemoProgress } from './progress';
import { DEMO_TARGETS, type DemoCurvePoint, type DemoReport } from './report';
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
  report: DemoReport;
  experimentDir: string;
  reportFile: string;
  gridFile: string;
}

/** Runs the six phases (generate, rate, reward, ddpo, eval, report) and writes report.json and grid.png. */
export async function runDemo(o: DemoOptions, h: DemoHooks = {}): Promise<DemoResult> {
  const modelDir = o.modelDir ?? embeddedModelDir();
  assertModelPresent(modelDir);
  const name = o.name ?? `demo-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}`;
  const store = new ExperimentStore(o.workspace);
  await store.create(name, {
    baseModel: { id: 'tiny-shapes', path: modelDir }, prompts: [...o.trainPrompts], rewardBackbone: backboneRefFromSpec(o.backbone ?? demoBackbone(o.taste)),
    settings: { steps: o.steps, guidanceScale: o.guidance, imageSize: 32, seed: o.seed, demo: true },
  });
  const dir = store.dirOf(name);
  // held for the whole demo; the reward and DDPO training it runs inside are part of it
  return withRunLock(dir, 'ddpo demo', () => runPhases(o, h, modelDir, dir), h.onLog);
}

// Everything after the experiment exists: the six phases and the report.
async function runPhases(o: DemoOptions, h: DemoHooks, modelDir: string, dir: string): Promise<DemoResult> {
  const clock = new PhaseClock(h.onProgress);
  const log = h.onLog ?? (() => undefined);
  const ddpoSettings = demoDdpoSettings(o);
  await atomicWriteFile(ddpoLayout(dir).configFile, JSON.stringify(ddpoSettings, null, 2) + '\n');
  const { config } = parseDdpoConfig(ddpoSettings, ddpoLayout(dir).configFile);
  log(`experiment ${dir} on ${modelDir}`);
  log(`taste of the simulated rater: ${TASTE_DESCRIPTIONS[o.taste]}`);

  const sampling = { steps: o.steps, guidance: o.guidance, eta: config.sample_eta, signal: h.signal };
  const evalSeeds = Array.from({ length: o.evalSeeds }, (_, k) => EVAL_SEED_BASE + k);
  clock.start('generate', 'loading the model');
  const policy = await createOnnxPolicy(modelDir, config, { threads: o.threads });
  try {
    // 1. Base-model samples to rate, and the base images of the held-out set (rendered now, while the LoRA is zero).
    const nImages = o.trainPrompts.length * o.imagesPerPrompt + o.evalPrompts.length * o.evalSeeds;
    const samples = await generateSamples(policy, dir, o.trainPrompts, o.imagesPerPrompt, {
      ...sampling, seed: o.seed, onImages: (d) => clock.report(d, `${d}/${nImages} base images`, nImages),
    });
    const base = await renderEvalSet(policy, o.evalPrompts, EVAL_SEED_BASE, o.evalSeeds, {
      ...sampling, onRow: (d) => clock.report(samples.images.length + d * o.evalSeeds, `${samples.images.length + d * o.evalSeeds}/${nImages} base images`, nImages),
    });
    const utility = tasteUtility(o.taste);
    const utils = samples.images.map((img, i) => utility(img, samples.refs[i].prompt));
    const typicalPrompts = tasteReadsPrompt(o.taste) ? samples.refs.map((r) => r.prompt) : undefined;
    log(`generated ${samples.images.length} images of ${o.trainPrompts.length} training prompts and ${o.evalPrompts.length * o.evalSeeds} held-out base images`);

    // 2. The simulated rater rates same-prompt pairs.
    clock.start('rate', `${o.pairs} pairs`);
    const rater = makeDemoRater({ taste: o.taste, typicalUtilities: utils, typicalPrompts, seed: o.seed + 1 });
    const rated = rateSamples(dir, samples, rater, o.pairs, o.seed + 2, (d) => clock.report(d, `${d}/${o.pairs} pairs rated`, o.pairs), RATER_NAMES[o.taste]);
    log(`rated ${rated.ratings} pairs into ratings.jsonl (left ${rated.left}, right ${rated.right}, ties ${rated.ties}, repeats ${rated.repeats})`);

    // 3. A reward model learns the rater from the ratings alone.
    clock.start('reward', 'training the reward model');
    const { card } = await trainExperimentReward(dir, { seed: o.seed, l1: o.rewardL1, onProgress: (line) => clock.report(0.5, line) });
    log(`reward model: ${card.summary}`);

    // 4. DDPO against the learned reward.
    clock.start('ddpo', `${config.num_epochs} epochs`);
    const { curve, stoppedEarly } = await fineTune(policy, config, dir, clock, log, h.signal);

    // 5. Blind evaluation with the rater's true taste and noise.
    clock.start('eval', 'rendering tuned images');
    const tuned = await renderEvalSet(policy, o.evalPrompts, EVAL_SEED_BASE, o.evalSeeds, {
      ...sampling, onRow: (d, n) => clock.report(d, `${d}/${n} held-out prompts rendered with the tuned model`, n),
    });
    const judge = makeDemoRater({ taste: o.taste, typicalUtilities: utils, typicalPrompts, seed: o.seed + 3 });
    const blind = judgeBlind(judge, o.evalPrompts, EVAL_SEED_BASE, base, tuned, o.seed + 4);
    const learned = await makeReward('learned', dir);
    const meanOf = async (rows: typeof base) => {
      const r = await learned(rows.flat(), rows.flatMap((row, p) => row.map(() => o.evalPrompts[p])), []);
      return r.reduce((s, x) => s + x, 0) / Math.max(1, r.length);
    };
    const learnedReward = { base: await meanOf(base), tuned: await meanOf(tuned) };
    await learned.release?.();

    // 6. Report and grid.
    clock.start('report', 'writing report.json and grid.png');
    const outDir = path.resolve(o.out ?? dir);
    fs.mkdirSync(outDir, { recursive: true });
    const cols = Math.min(o.gridColumns, o.evalSeeds);
    const gridFile = path.join(outDir, 'grid.png');
    await atomicWriteFile(gridFile, encodePng(composeGrid(base.map((b, p) => ({ base: b.slice(0, cols), tuned: tuned[p].slice(0, cols) }))), { layout: GRID_LAYOUT, software: 'DDPO Studio demo' }));
    const q = [...utils].sort((a, b) => a - b);
    const quart = (f: number) => q[Math.min(q.length - 1, Math.floor(f * q.length))];
    clock.finish();
    const total = clock.elapsed();
    const report: DemoReport = {
      format: 'ddpo-demo-report', version: 1, createdAt: new Date().toISOString(), experimentDir: dir, model: modelDir, taste: TASTE_DESCRIPTIONS[o.taste],
      baseModel: { samples: utils.length, utilityMean: utils.reduce((s, x) => s + x, 0) / utils.length, utilityQuartiles: [quart(0.25), quart(0.5), quart(0.75)] },
      ratings: { ...rated, raterConsistency: rater.opts.consistency, raterTieRate: rater.opts.tieRate ?? 0 },
      rewardModel: {
        backbone: card.backbone, backboneLabel: card.backboneLabel, heldOutAccuracy: card.heldOut.accuracy, heldOutDecisive: card.heldOut.decisive, trainComparisons: card.data.trainComparisons,
        learningCurve: card.learningCurve.map((p) => ({ comparisons: p.comparisons, accuracy: p.accuracy })), summary: card.summary,
      },
      ddpo: { curve, settings: ddpoSettings, ...deviations(config), checkpointDir: path.relative(dir, ddpoLayout(dir).checkpointsDir), ...(stoppedEarly ? { stoppedEarly } : {}) },
      eval: {
        prompts: [...o.evalPrompts], seeds: evalSeeds, wins: blind.wins, losses: blind.losses, ties: blind.ties, skips: blind.skips, winRate: blind.winRate,
        meanUtilityBase: blind.meanUtilityBase, meanUtilityTuned: blind.meanUtilityTuned,
        learnedRewardBase: learnedReward.base, learnedRewardTuned: learnedReward.tuned, judgements: blind.judgements,
      },
      grid: { file: path.relative(outDir, gridFile), layout: GRID_LAYOUT, seeds: evalSeeds.slice(0, cols) },
      timings: { phases: { ...clock.seconds }, totalSeconds: total },
      targets: { ...DEMO_TARGETS, timeMet: total <= DEMO_TARGETS.maxSeconds, winRateMet: blind.winRate.rate >= DEMO_TARGETS.minWinRate },
      settings: { ...o, ddpo: undefined },
    };
    const reportFile = path.join(outDir, 'report.json');
    await atomicWriteFile(reportFile, JSON.stringify(report, null, 2) + '\n');
    return { report, experimentDir: dir, reportFile, gridFile };
  } finally {
    await policy.release?.();
  }
}

// Phase 4: DDPO epochs on the learned reward, progress per sampling batch and PPO step.
async function fineTune(policy: Policy, config: DdpoConfig, dir: string, clock: PhaseClock, log: (l: string) => void, signal?: AbortSignal): Promise<{ curve: DemoCurvePoint[]; stoppedEarly?: string }> {
  const curve: DemoCurvePoint[] = [];
  const phaseShare = { eval: 0, sample: 0, reward: 0.5, train: 0.5, checkpoint: 1, done: 1 } as const;
  // The demo's policy is passed in: it renders the tuned images of the blind evaluation afterwards.
  const result = await trainExperiment(dir, {
    policy, signal,
    onProgress: (p) => {
      const within = p.total > 0 ? p.done / p.total : 1;
      const frac = p.phase === 'sample' ? within * 0.5 : p.phase === 'train' ? 0.5 + within * 0.5 : phaseShare[p.phase];
      clock.report(p.epoch + frac, `epoch ${p.epoch + 1}/${p.numEpochs} ${p.phase} ${p.done}/${p.total}`, p.numEpochs);
    },
    onEpoch: (m) => {
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
  const skip = new Set(['exp_name', 'save_freq', 'seed']);
  const out: Pick<DemoReport['ddpo'], 'deviationsFromTrl' | 'projectSettings'> = { deviationsFromTrl: {}, projectSettings: {} };
  for (const [k, v] of Object.entries(c)) {
    const d = (DEFAULT_DDPO_CONFIG as unknown as Record<string, unknown>)[k];
    if (skip.has(k) || JSON.stringify(d) === JSON.stringify(v)) continue;
    if (isTrlSetting(k)) out.deviationsFromTrl[k] = { trl: d, demo: v };
    else out.projectSettings[k] = { default: d, demo: v };
  }
  return out;
}
