import { defineCommand, type CliCommand } from './command';
import { evalExperimentReward, openBackbone, trainExperimentReward } from '../core/reward/experiment';
import { learningCurve, simulateSession } from '../core/reward/simulate';
import { summarizeRatingsProblems } from '../core/reward/store';

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');

/** `ddpo reward train --experiment DIR [--backbone builtin|MODEL.onnx|DIR] [--head linear|mlp]` */
export const rewardTrainCommand = defineCommand({
  path: ['reward', 'train'],
  summary: 'Train the reward model of an experiment from its ratings',
  flags: { experiment: 'text', backbone: 'text', head: ['linear', 'mlp'], hidden: 'integer', seed: 'integer' },
  required: ['experiment'],
  usage: 'ddpo reward train --experiment DIR [--backbone builtin|PATH] [--head linear|mlp] [--hidden N] [--seed N]\n' +
    '  --backbone  builtin (hand-made colour/shape features, default) or an ONNX image encoder (pixel_values -> embeddings), file or folder\n' +
    '  Writes DIR/reward/head-<time>.safetensors, then DIR/reward/card.json that names it (the previous model stays\n' +
    '  in use until then). A rating whose image is missing or not a PNG is skipped with its line number.',
  async run({ flags }, io) {
    const backbone = await openBackbone(flags.backbone);
    const { card, log } = await trainExperimentReward(flags.experiment, { backbone, kind: flags.head ?? 'linear', hidden: flags.hidden ?? 32, seed: flags.seed ?? 0, onProgress: io.progress, lockLabel: 'ddpo reward train' });
    for (const line of summarizeRatingsProblems(log.problems)) io.err(line);
    io.out(`trained ${card.head.kind} head on ${card.data.trainComparisons} comparisons (${card.data.heldOutComparisons} held out, ${card.data.skips} skips) with ${card.backbone}`);
    io.out(`held-out accuracy ${pct(card.heldOut.accuracy)}, log-loss ${card.heldOut.logLoss.toFixed(3)}, calibration error ${card.heldOut.ece.toFixed(3)}`);
    for (const p of card.learningCurve) io.out(`  ${p.comparisons} comparisons: accuracy ${pct(p.accuracy)}`);
    io.out(card.summary);
    return 0;
  },
});

/** `ddpo reward eval --experiment DIR` */
export const rewardEvalCommand = defineCommand({
  path: ['reward', 'eval'],
  summary: 'Score the saved reward model on the experiment\'s ratings',
  flags: { experiment: 'text', backbone: 'text' },
  required: ['experiment'],
  usage: 'ddpo reward eval --experiment DIR [--backbone PATH]   (the backbone must be the one the model was trained on)',
  async run({ flags }, io) {
    const bb = flags.backbone === undefined ? undefined : await openBackbone(flags.backbone);
    const r = await evalExperimentReward(flags.experiment, bb);
    io.out(`held-out: ${r.heldOut.decisive} decisive pairs, accuracy ${pct(r.heldOut.accuracy)}, log-loss ${r.heldOut.logLoss.toFixed(3)}, ECE ${r.heldOut.ece.toFixed(3)}`);
    io.out(`all ratings: ${r.all.decisive} decisive pairs, accuracy ${pct(r.all.accuracy)}`);
    for (const b of r.heldOut.calibration) if (b.n) io.out(`  predicted ${pct(b.meanPredicted)} -> observed ${pct(b.observed)} (${b.n} pairs)`);
    const c = r.rater;
    io.out(c.repeats ? `rater: ${c.repeats} repeats, agreement ${pct(c.agreement.rate)} (95% CI ${pct(c.agreement.low)}-${pct(c.agreement.high)}), per-answer consistency ~${pct(c.estimatedConsistency)}` : 'rater: no repeated pairs yet');
    io.out(`position bias: left chosen ${pct(c.leftRate.rate)} of decisive answers (95% CI ${pct(c.leftRate.low)}-${pct(c.leftRate.high)})`);
    return 0;
  },
});

/** `ddpo reward simulate` — learning curve and active-vs-random selection with a simulated rater. */
export const rewardSimulateCommand = defineCommand({
  path: ['reward', 'simulate'],
  summary: 'Measure the reward model with a simulated rater (learning curve, active vs random)',
  flags: { consistency: 'number', ties: 'number', noise: ['bradley-terry', 'uniform'], seeds: 'integer', budget: 'integer' },
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
