/** Studio jobs: pair generation, ratings, reward training, fine-tuning, comparisons, LoRA export. */
import * as path from 'node:path';
import { CHOICES, isChoice } from '../../protocol';
import { trainExperiment } from '../../core/ddpo/experimentRun';
import { isDpoMetrics } from '../../core/ddpo/metrics';
import { confirmedScriptGate } from '../../core/ddpo/rewardScript';
import { BACKBONE_REPO, PIPELINE_REPO, resolveModel, type DownloadProgress } from '../../core/models/hubDownload';
import { diagnoseModel } from '../../core/doctor/doctor';
import { trainExperimentReward } from '../../core/reward/experiment';
import { PreferenceStore, readRatings, summarizeRatingsProblems } from '../../core/reward/store';
import { runComparison } from '../../core/studio/compareRun';
import { formatWarmStart } from '../../core/studio/summary';
import { exportLoraFile } from '../../core/studio/exportLora';
import { generatePairsInto } from '../../core/studio/generate';
import { ratingsDir, readRatingLog, studioRater, summarizeRatings } from '../../core/studio/ratingLog';
import { resolveInside } from '../../core/fsutil';
import { jobProviders, machineBackends } from '../../core/runtime/jobProviders';
import type { JobContext, JobHandler } from '../jobs';
import { pipelineFor, releasePipelines } from '../models';
import { noteBackboneOpened } from '../rewardBackbones';
import { confirmedScript, existingDir, experimentDir, int, obj, optAlgorithm, optCompareSide, optStr, providerSetting, str } from './params';
import type { ExecutionProviderSetting, WorkerRequestKind } from '../../protocol';

// One AbortController per experiment being fine-tuned, so stopFineTune can reach the running job.
const runs = new Map<string, AbortController>();

/** Handler for `generatePairs`. */
export const generatePairsHandler: JobHandler<'generatePairs'> = {
  exclusive: true,
  parse: (raw) => {
    const p = obj(raw);
    return { experimentDir: experimentDir(p), modelDir: existingDir(p, 'modelDir'), count: int(p, 'count', 1, 200), executionProvider: providerSetting(p) };
  },
  async run({ experimentDir: dir, modelDir, count, executionProvider }, ctx) {
    const pipe = await pipelineFor(modelDir, await providersFor(executionProvider, ctx));
    const pairs = await generatePairsInto(dir, pipe, count, {
      signal: ctx.signal, onWarning: (m) => ctx.log(`warning: ${m}`),
      onPair: (pair, done) => ctx.progress({ pair: { pairId: pair.pairId, prompt: pair.prompt, a: pair.a, b: pair.b, seeds: pair.seeds }, fraction: done / count, message: `pair ${done} of ${count}` }),
    });
    return { pairs: pairs.map((x) => ({ pairId: x.pairId, prompt: x.prompt, a: x.a, b: x.b, seeds: x.seeds })) };
  },
};

// The job's provider plan from the user's setting; each model's provider (and why not a GPU) goes to the output channel.
async function providersFor<K extends WorkerRequestKind>(setting: ExecutionProviderSetting | undefined, ctx: JobContext<K>) {
  return jobProviders(setting ?? 'auto', await machineBackends(), ctx.log);
}

/** Handler for `rate`: replies only after the rating is fsynced, with the log as it now reads. */
export const rateHandler: JobHandler<'rate'> = {
  parse: (raw) => {
    const p = obj(raw);
    const dir = experimentDir(p);
    const compareId = optStr(p, 'compareId');
    const root = ratingsDir(dir, compareId);
    const choice = str(p, 'choice');
    if (!isChoice(choice)) throw new Error(`"choice" must be one of ${CHOICES.join(', ')}`);
    const sideOrder = str(p, 'sideOrder');
    if (sideOrder !== 'ab' && sideOrder !== 'ba') throw new Error('"sideOrder" must be "ab" or "ba"');
    const left = str(p, 'left'), right = str(p, 'right');
    resolveInside(root, left);
    resolveInside(root, right);
    const elapsedMs = typeof p.elapsedMs === 'number' && Number.isFinite(p.elapsedMs) ? Math.max(0, Math.round(p.elapsedMs)) : undefined;
    return { experimentDir: dir, compareId, pairId: str(p, 'pairId'), prompt: typeof p.prompt === 'string' ? p.prompt : '', left, right, choice, sideOrder, repeatOf: optStr(p, 'repeatOf'), elapsedMs };
  },
  async run(r) {
    const store = PreferenceStore.open(ratingsDir(r.experimentDir, r.compareId));
    try {
      const rating = store.append({ pairId: r.pairId, prompt: r.prompt, left: r.left, right: r.right, choice: r.choice, sideOrder: r.sideOrder, repeatOf: r.repeatOf, elapsedMs: r.elapsedMs, rater: studioRater() });
      // read back rather than added up here, so the reply also counts what other writers (another window, the CLI) appended
      return { ratingId: rating.id, ...readRatingLog(r.experimentDir, r.compareId) };
    } finally {
      store.close();
    }
  },
};

/** Handler for `undo`: replies with the log as it reads after the retraction. */
export const undoHandler: JobHandler<'undo'> = {
  parse: (raw) => {
    const p = obj(raw);
    const dir = experimentDir(p);
    const compareId = optStr(p, 'compareId');
    ratingsDir(dir, compareId);
    return { experimentDir: dir, compareId, ratingId: str(p, 'ratingId') };
  },
  async run(r) {
    const dir = ratingsDir(r.experimentDir, r.compareId);
    const ratings = readRatings(dir).ratings;
    if (!ratings.some((x) => x.id === r.ratingId)) throw new Error(`no rating ${r.ratingId} to undo in ${dir}/ratings.jsonl`);
    const store = PreferenceStore.open(dir);
    try {
      store.retract(r.ratingId);
    } finally {
      store.close();
    }
    return summarizeRatings(r.experimentDir, r.compareId, ratings.filter((x) => x.id !== r.ratingId));
  },
};

/** Handler for `trainReward`: the backbone opens on the job's providers; a Hub backbone not yet cached is downloaded with progress. */
export const trainRewardHandler: JobHandler<'trainReward'> = {
  exclusive: true,
  parse: (raw) => {
    const p = obj(raw);
    return { experimentDir: experimentDir(p), executionProvider: providerSetting(p) };
  },
  async run({ experimentDir: dir, executionProvider }, ctx) {
    const progress = (line: string) => ctx.progress({ message: line });
    const { card, log } = await trainExperimentReward(dir, {
      onProgress: progress, lockLabel: 'DDPO Studio reward training', signal: ctx.signal,
      open: { providers: await providersFor(executionProvider, ctx), signal: ctx.signal, onLog: ctx.log, onOpened: noteBackboneOpened, onProgress: (p) => progress(downloadMessage(p)) },
    });
    for (const line of summarizeRatingsProblems(log.problems)) ctx.log(`warning: ${line}`);
    return { accuracy: card.heldOut.accuracy, heldOut: card.data.heldOutComparisons, comparisons: card.data.comparisons, summary: card.summary, backbone: card.backboneLabel ?? card.backbone, warmStart: formatWarmStart(card.warmStart) };
  },
};

const downloadMessage = (p: DownloadProgress) => `downloading ${p.file} ${(p.bytes / 2 ** 20).toFixed(0)}/${(p.total / 2 ** 20).toFixed(0)} MiB`;

/** Handler for `startFineTune`: progress carries each epoch's metrics for the dashboard. */
export const startFineTuneHandler: JobHandler<'startFineTune'> = {
  exclusive: true,
  parse: (raw) => {
    const p = obj(raw);
    return { experimentDir: experimentDir(p), modelDir: existingDir(p, 'modelDir'), resume: p.resume === true, algorithm: optAlgorithm(p), executionProvider: providerSetting(p), rewardScript: confirmedScript(p) };
  },
  async run({ experimentDir: dir, modelDir, resume, algorithm, executionProvider, rewardScript }, ctx) {
    if (runs.has(dir)) throw new Error(`${path.basename(dir)} is already fine-tuning`);
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    runs.set(dir, ctl);
    let numEpochs = 0;
    try {
      await releasePipelines();
      const r = await trainExperiment(dir, {
        modelDir, resume, algorithm, signal: ctl.signal, onLog: ctx.log, providers: await providersFor(executionProvider, ctx), approveRewardScript: confirmedScriptGate(rewardScript), lockLabel: 'DDPO Studio fine-tuning', onBackboneOpened: noteBackboneOpened,
        // before the first epoch: the reward's backbone, downloaded again when the cache lost it
        onBackboneDownload: (p) => ctx.progress({ epoch: 0, numEpochs, phase: 'download', fraction: 0, message: downloadMessage(p) }),
        onProgress: (p) => {
          numEpochs = p.numEpochs;
          const frac = p.total > 0 ? p.done / p.total : 0;
          ctx.progress({ epoch: p.epoch, numEpochs: p.numEpochs, phase: p.phase, fraction: (p.epoch + (p.phase === 'done' ? 1 : frac)) / p.numEpochs, message: `epoch ${p.epoch + 1}/${p.numEpochs}: ${p.phase} ${p.done}/${p.total}` });
        },
        onEpoch: (m) => ctx.progress(isDpoMetrics(m) ? {
          epoch: m.epoch, numEpochs, phase: 'epoch', fraction: (m.epoch + 1) / Math.max(1, numEpochs), message: `epoch ${m.epoch + 1} done: implicit reward accuracy ${(100 * (m.held_out ?? m).implicit_acc).toFixed(0)}%${m.held_out ? ' (held-out pairs)' : ''}`,
          finishedDpo: { epoch: m.epoch, loss: m.loss, implicitAcc: m.implicit_acc, heldOutAcc: m.held_out?.implicit_acc ?? null, marginMean: m.margin_mean },
        } : {
          epoch: m.epoch, numEpochs, phase: 'epoch', fraction: (m.epoch + 1) / Math.max(1, numEpochs), message: `epoch ${m.epoch + 1} done: reward ${m.reward_mean.toFixed(3)}`,
          finished: { epoch: m.epoch, rewardMean: m.reward_mean, rewardStd: m.reward_std, approxKl: m.approx_kl, clipfrac: m.clipfrac },
        }),
      });
      return { firstEpoch: r.firstEpoch, lastEpoch: r.lastEpoch, algorithm: r.algorithm, ...(r.stoppedEarly ? { stoppedEarly: r.stoppedEarly.message } : {}) };
    } finally {
      runs.delete(dir);
      ctx.signal.removeEventListener('abort', onAbort);
    }
  },
};

/** Handler for `stopFineTune`. */
export const stopFineTuneHandler: JobHandler<'stopFineTune'> = {
  parse: (raw) => ({ experimentDir: experimentDir(obj(raw)) }),
  async run({ experimentDir: dir }) {
    const ctl = runs.get(dir);
    ctl?.abort();
    return { stopped: !!ctl };
  },
};

/** Handler for `compare`. */
export const compareHandler: JobHandler<'compare'> = {
  exclusive: true,
  parse: (raw) => {
    const p = obj(raw);
    return {
      experimentDir: experimentDir(p), modelDir: existingDir(p, 'modelDir'), epoch: p.epoch === undefined ? undefined : int(p, 'epoch', 0, 1e7),
      a: optCompareSide(p, 'a'), b: optCompareSide(p, 'b'), seedsPerPrompt: int(p, 'seedsPerPrompt', 1, 50), executionProvider: providerSetting(p),
    };
  },
  async run({ experimentDir: dir, modelDir, epoch, a, b, seedsPerPrompt, executionProvider }, ctx) {
    await releasePipelines();
    const m = await runComparison(dir, { modelDir, epoch, a, b, seedsPerPrompt, providers: await providersFor(executionProvider, ctx), signal: ctx.signal, onLog: ctx.log, onProgress: (d, n) => ctx.progress({ fraction: d / n, message: `image ${d} of ${n}` }), lockLabel: 'DDPO Studio blind comparison' });
    return { compareId: m.id, pairs: m.items.length };
  },
};

/** Handler for `exportLora`. */
export const exportLoraHandler: JobHandler<'exportLora'> = {
  parse: (raw) => {
    const p = obj(raw);
    const format = str(p, 'format');
    if (format !== 'kohya' && format !== 'peft') throw new Error('"format" must be "kohya" or "peft"');
    return { experimentDir: experimentDir(p), format, epoch: p.epoch === undefined ? undefined : int(p, 'epoch', 0, 1e7), algorithm: optAlgorithm(p) };
  },
  run: ({ experimentDir: dir, format, epoch, algorithm }) => exportLoraFile(dir, format, epoch, algorithm),
};

/** Handler for `downloadModel`. */
export const downloadModelHandler: JobHandler<'downloadModel'> = {
  exclusive: true,
  parse: (raw) => {
    const p = obj(raw);
    const repo = str(p, 'repo');
    if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) throw new Error(`"repo" must look like owner/name, got ${repo}`);
    const cacheDir = str(p, 'cacheDir');
    if (!path.isAbsolute(cacheDir)) throw new Error('"cacheDir" must be an absolute path');
    const kind = p.kind ?? 'pipeline';
    if (kind !== 'pipeline' && kind !== 'backbone') throw new Error('"kind" must be "pipeline" or "backbone"');
    return { repo, cacheDir, kind };
  },
  async run({ repo, cacheDir, kind }, ctx) {
    const dir = await resolveModel(repo, {
      cacheDir, signal: ctx.signal, token: process.env.HF_TOKEN, layout: kind === 'backbone' ? BACKBONE_REPO : PIPELINE_REPO,
      onProgress: (p) => ctx.progress({ message: downloadMessage(p), fraction: p.total ? p.bytes / p.total : undefined }),
    });
    return { dir };
  },
};

/** Handler for `checkModel`: `ddpo doctor` on a model folder, for New Experiment. */
export const checkModelHandler: JobHandler<'checkModel'> = {
  exclusive: true,
  parse: (raw) => {
    const p = obj(raw);
    const ddpo = p.ddpo;
    if (ddpo !== undefined && (typeof ddpo !== 'object' || ddpo === null || Array.isArray(ddpo))) throw new Error('"ddpo" must be an object of ddpo.json settings');
    return { modelDir: existingDir(p, 'modelDir'), ddpo: ddpo as Record<string, unknown> | undefined };
  },
  async run({ modelDir, ddpo }, ctx) {
    await releasePipelines();
    return diagnoseModel(modelDir, { ddpo, signal: ctx.signal, onProgress: (message) => ctx.progress({ message }) });
  },
};
