import { defineCommand, type CliCommand, type CliIO, type FlagValues } from './command';
import { evalExperimentReward, trainExperimentReward } from '../core/reward/experiment';
import { openBackbone, type OpenBackboneOptions } from '../core/reward/openBackbone';
import { PRIOR_NAMES } from '../core/reward/priorNames';
import { learningCurve, simulateSession } from '../core/reward/simulate';
import { summarizeRatingsProblems } from '../core/reward/store';
import { parseProviderSetting } from '../core/runtime/providers';
import { jobProviders, machineBackends } from '../core/runtime/jobProviders';

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');

/** The flags that say how a reward backbone is opened. */
export const BACKBONE_FLAGS = { backbone: 'text', ep: 'text', cache: 'text', offline: 'boolean' } as const;

/** Their help text. */
export const BACKBONE_USAGE =
  '  --backbone  what embeds the images (default: the experiment\'s "rewardBackbone", else the built-in features for the\n' +
  '              embedded model and Xenova/clip-vit-large-patch14 for others): builtin (hand-made colour/shape\n' +
  '              features), a Hugging Face repo id of a CLIP ONNX export (downloaded once into --cache), or a folder\n' +
  '              (onnx/vision_model.onnx + onnx/text_model.onnx + tokenizer.json, a combined onnx/model.onnx, or an\n' +
  '              image encoder model.onnx) or .onnx file. With a text tower the reward also reads each image\'s prompt.\n' +
  '  --ep        execution provider of the backbone (default cpu; auto tries the GPU providers first)\n' +
  '  --cache     Hub download folder (default ~/.cache/ddpo-studio/models); --offline never downloads\n';

/** How --backbone, --ep, --cache and --offline open a backbone. */
export async function backboneOptions(flags: FlagValues<typeof BACKBONE_FLAGS>, io: CliIO): Promise<OpenBackboneOptions> {
  const setting = parseProviderSetting(flags.ep ?? 'cpu');
  return {
    providers: setting === 'cpu' ? undefined : jobProviders(setting, await machineBackends(), io.err),
    cacheDir: flags.cache, offline: flags.offline === true, signal: io.signal, onLog: io.err,
    onProgress: (p) => io.progress(`downloading ${p.file} ${(p.bytes / 2 ** 20).toFixed(0)}/${(p.total / 2 ** 20).toFixed(0)} MiB`),
  };
}

/** `ddpo reward train --experiment DIR [--backbone builtin|REPO|PATH] [--head linear|mlp] [--prior NAME|none]` */
export const rewardTrainCommand = defineCommand({
  path: ['reward', 'train'],
  summary: 'Train the reward model of an experiment from its ratings',
  flags: { experiment: 'text', ...BACKBONE_FLAGS, head: ['linear', 'mlp'], hidden: 'integer>=1', seed: 'integer>=0', prior: [...PRIOR_NAMES, 'none'] },
  required: ['experiment'],
  usage: 'ddpo reward train --experiment DIR [--backbone builtin|REPO|PATH] [--ep EP] [--head linear|mlp] [--hidden N] [--seed N] [--prior aesthetic|clip_score|shape_taste|none]\n' +
    BACKBONE_USAGE +
    '  --prior     start the head from a built-in reward and learn a correction (default: the experiment\'s "rewardPrior",\n' +
    '              else none); the card then compares warm and cold held-out accuracy at 8, 16, 32, 64 and all comparisons\n' +
    '  Writes DIR/reward/head-<time>.safetensors, then DIR/reward/card.json that names it (the previous model stays\n' +
    '  in use until then). A rating whose image is missing or not a PNG is skipped with its line number.',
  async run({ flags }, io) {
    const open = await backboneOptions(flags, io);
    const backbone = flags.backbone === undefined ? undefined : await openBackbone(flags.backbone, open);
    try {
      const { card, log } = await trainExperimentReward(flags.experiment, { backbone, open, kind: flags.head ?? 'linear', hidden: flags.hidden ?? 32, seed: flags.seed ?? 0, prior: flags.prior, onProgress: io.progress, lockLabel: 'ddpo reward train' });
      for (const line of summarizeRatingsProblems(log.problems)) io.err(line);
      io.out(`trained ${card.head.kind} head on ${card.data.trainComparisons} comparisons (${card.data.heldOutComparisons} held out, ${card.data.skips} skips) with ${card.backboneLabel ?? card.backbone}` +
        (card.head.features === 'image-prompt-v1' ? ', reading each image\'s prompt' : ''));
      io.out(`held-out accuracy ${pct(card.heldOut.accuracy)}, log-loss ${card.heldOut.logLoss.toFixed(3)}, calibration error ${card.heldOut.ece.toFixed(3)}`);
      for (const p of card.learningCurve) io.out(`  ${p.comparisons} comparisons: accuracy ${pct(p.accuracy)}`);
      const w = card.warmStart;
      if (w) io.out(`warm start from ${w.prior} (${pct(w.priorAccuracy)} before any rating): ${w.points.map((p) => `${p.comparisons}: cold ${pct(p.cold)}, warm ${pct(p.warm)}`).join('; ')}`);
      io.out(card.summary);
      return 0;
    } finally {
      await backbone?.dispose?.();
    }
  },
});

/** `ddpo reward eval --experiment DIR` */
export const rewardEvalCommand = defineCommand({
  path: ['reward', 'eval'],
  summary: 'Score the saved reward model on the experiment\'s ratings',
  flags: { experiment: 'text', ...BACKBONE_FLAGS },
  required: ['experiment'],
  usage: 'ddpo reward eval --experiment DIR [--backbone builtin|REPO|PATH] [--ep EP] [--cache DIR] [--offline]\n' +
    '  Scores with the backbone the model was trained on (it records where it came from); --backbone must name that one.',
  async run({ flags }, io) {
    const open = await backboneOptions(flags, io);
    const bb = flags.backbone === undefined ? undefined : await openBackbone(flags.backbone, open);
    try {
      const r = await evalExperimentReward(flags.experiment, bb, undefined, open);
      io.out(`held-out: ${r.heldOut.decisive} decisive pairs, accuracy ${pct(r.heldOut.accuracy)}, log-loss ${r.heldOut.logLoss.toFixed(3)}, ECE ${r.heldOut.ece.toFixed(3)}`);
      io.out(`all ratings: ${r.all.decisive} decisive pairs, accuracy ${pct(r.all.accuracy)}`);
      for (const b of r.heldOut.calibration) if (b.n) io.out(`  predicted ${pct(b.meanPredicted)} -> observed ${pct(b.observed)} (${b.n} pairs)`);
      const c = r.rater;
      io.out(c.repeats ? `rater: ${c.repeats} repeats, agreement ${pct(c.agreement.rate)} (95% CI ${pct(c.agreement.low)}-${pct(c.agreement.high)}), per-answer consistency ~${pct(c.estimatedConsistency)}` : 'rater: no repeated pairs yet');
      io.out(`position bias: left chosen ${pct(c.leftRate.rate)} of decisive answers (95% CI ${pct(c.leftRate.low)}-${pct(c.leftRate.high)})`);
      return 0;
    } finally {
      await bb?.dispose?.();
    }
  },
});

/** `ddpo reward simulate` — learning curve and active-vs-random selection with a simulated rater. */
export const rewardSimulateCommand = defineCommand({
  path: ['reward', 'simulate'],
  summary: 'Measure the reward model with a simulated rater (learning curve, active vs random)',
  flags: { consistency: 'number', ties: 'number', noise: ['bradley-terry', 'uniform'], seeds: 'integer>=1', budget: 'integer>=1' },
  usage: 'ddpo reward simulate [--consistency 0.9] [--ties 0.1] [--noise bradley-terry|uniform] [--seeds 3] [--budget 300]',
  async run({ flags }, io) {
    const rater = { consistency: flags.consistency ?? 0.9, tieRate: flags.ties ?? 0.1, noise: flags.noise ?? 'bradley-terry' };
    const seeds = flags.seeds ?? 3, budget = flags.budget ?? 300;
    const counts = [25, 50, 100, 200, 300].filter((c) => c <= budget);
    for (let s = 1; s <= seeds; s++) {
      const lc = await learningCurve(counts, { rater, seed: s });
      io.out(`seed ${s}: ceiling ${pct(lc.ceiling)}; ` + lc.points.map((p) => `${p.pairs}: ${pct(p.accuracy)}`).join(', '));
    }
    const curves = { random: [] as number[][], active: [] as number[][] };
    let counts2: number[] = [];
    for (const mode of ['random', 'active'] as const) for (let s = 1; s <= seeds; s++) {
      const r = await simulateSession(mode, budget, { rater, seed: s });
      counts2 = r.curve.map((p) => p.pairs);
      curves[mode].push(r.curve.map((p) => p.accuracy));
      io.progress(`${mode} seed ${s} done`);
    }
    const mean = (rows: number[][]) => rows[0].map((_, k) => rows.reduce((a, r) => a + r[k], 0) / rows.length);
    const rnd = mean(curves.random), act = mean(curves.active);
    counts2.forEach((n, k) => io.out(`${n} ratings: random ${pct(rnd[k])}, active ${pct(act[k])}`));
    const target = rnd.at(-1)!;
    const k = act.findIndex((a) => a >= target);
    io.out(k >= 0 ? `active selection reaches random's ${budget}-rating accuracy (${pct(target)}) after ${counts2[k]} ratings` : `active selection did not reach random's accuracy ${pct(target)} within ${budget} ratings`);
    return 0;
  },
});

/** All reward subcommands, for src/cli/main.ts. */
export const rewardCommands: CliCommand[] = [rewardTrainCommand, rewardEvalCommand, rewardSimulateCommand];
