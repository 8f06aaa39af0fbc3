import * as path from 'node:path';
import { defineCommand, UsageError } from './command';
import { parseSettingOverrides } from '../core/ddpo/config';
import { formatProgress, type DemoProgress } from '../core/demo/progress';
import { settingsLines, summaryLines } from '../core/demo/report';
import { runDemo } from '../core/demo/run';
import { DPO_DEMO_SETTINGS, fullDemoOptions, quickDemoOptions, withTaste } from '../core/demo/settings';
import { DEMO_TASTES } from '../core/demo/taste';
import { TRAINING_ALGORITHMS } from '../protocol';

/** `ddpo demo [--workspace DIR] [--out DIR] [--seed N] [--pairs N] [--epochs N] [--taste T] [--backbone B] [--quick]` */
export const demoCommand = defineCommand({
  path: ['demo'],
  summary: 'Watch a model learn a simulated rater\'s taste on the embedded model, in minutes, no GPU or download',
  flags: {
    workspace: 'text', out: 'text', name: 'text', seed: 'integer>=0', pairs: 'integer>=1', epochs: 'integer>=1', threads: 'integer>=1',
    taste: [...DEMO_TASTES], backbone: 'text', set: 'repeatable', quick: 'boolean', algorithm: TRAINING_ALGORITHMS,
  },
  usage: 'ddpo demo [--algorithm ddpo|diffusion-dpo] [--workspace DIR] [--out DIR] [--name NAME] [--seed N] [--pairs N] [--epochs N] [--threads N] [--taste T] [--backbone B] [--quick]\n' +
    '  Creates <workspace>/.ddpo/demo-<time>/ on the embedded tiny model and runs, with progress:\n' +
    '   1 generate  base images of 6 training prompts, and of 8 held-out prompts x 10 held-out seeds\n' +
    '   2 rate      a simulated rater who likes BIG shapes (90% consistent, 5% ties) rates same-prompt pairs\n' +
    '   3 reward    a reward model learns the rater from ratings.jsonl (held-out accuracy printed)\n' +
    '   4 ddpo      DDPO fine-tunes a LoRA against the learned reward (reward curve per epoch)\n' +
    '   5 eval      blind test: base and tuned images of the same held-out prompt and seed, sides shuffled,\n' +
    '               judged by the rater; win rate of tuned over base with a 95% Wilson interval\n' +
    '   6 report    report.json (all figures, settings, timings) and grid.png (BASE left, TUNED right)\n' +
    '  --algorithm diffusion-dpo  phases 3 and 4 become one: Diffusion-DPO trains the LoRA on the rated pairs directly\n' +
    '                   (no reward model); the same ratings, the same blind test\n' +
    '  --workspace DIR  where .ddpo/ goes (default: current folder)\n' +
    '  --out DIR        where report.json and grid.png go (default: the experiment folder)\n' +
    '  --pairs N        rated pairs (default 300)      --epochs N  epochs of the algorithm (DDPO 20, Diffusion-DPO ' + `${DPO_DEMO_SETTINGS.num_epochs})\n` +
    '  --taste big|warm|fidelity  the simulated rater\'s taste (default big); fidelity: big shapes, but only while the\n' +
    '                   shape is the one the prompt names (a geometric test judges), on prompts whose shapes the base model misdraws\n' +
    '  --backbone B     the reward backbone the experiment records: builtin, embedded:tiny-clip, a folder or a Hub repo\n' +
    '                   (default: embedded:tiny-clip for --taste fidelity, which needs the prompt, else builtin)\n' +
    '  --set KEY=VALUE  override a ddpo.json setting of the algorithm (repeatable), e.g. --set train_learning_rate=0.005\n' +
    '  --quick          a reduced run (about a minute): fewer pairs, 1 short epoch, a small evaluation',
  async run({ flags }, io) {
    const workspace = path.resolve(flags.workspace ?? '.');
    const o = withTaste(flags.quick === true ? quickDemoOptions(workspace) : fullDemoOptions(workspace), flags.taste ?? 'big');
    o.seed = flags.seed ?? o.seed;
    o.pairs = flags.pairs ?? o.pairs;
    o.algorithm = flags.algorithm ?? o.algorithm;
    if (o.algorithm === 'diffusion-dpo') o.dpoEpochs = flags.epochs ?? o.dpoEpochs;
    else o.epochs = flags.epochs ?? o.epochs;
    o.threads = flags.threads ?? o.threads;
    o.backbone = flags.backbone ?? o.backbone;
    if (flags.out !== undefined) o.out = path.resolve(flags.out);
    if (flags.name !== undefined) o.name = flags.name;
    let overrides: Record<string, unknown>;
    try {
      overrides = parseSettingOverrides(flags.set ?? []);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (Object.keys(overrides).length) o.ddpo = { ...o.ddpo, ...overrides };
    if ('sample_batch_size' in overrides) o.sampleBatch = Number(overrides.sample_batch_size);
    if ('sample_num_batches_per_epoch' in overrides) o.batchesPerEpoch = Number(overrides.sample_num_batches_per_epoch);
    try {
      // At most one progress line a second per phase (plus each phase's start), so a log file stays readable.
      let last = { phase: '', t: 0 };
      const onProgress = (p: DemoProgress) => {
        const now = Date.now();
        if (p.phase === last.phase && now - last.t < 1000) return;
        last = { phase: p.phase, t: now };
        io.progress(formatProgress(p));
      };
      const r = await runDemo(o, { signal: io.signal, onLog: io.out, onProgress });
      for (const line of [...settingsLines(r.report), ...summaryLines(r.report)]) io.out(line);
      io.out(`report: ${r.reportFile}`);
      io.out(`grid:   ${r.gridFile}  (BASE left, TUNED right; one row per held-out prompt, same seed per column)`);
      return 0;
    } catch (e) {
      if (io.signal.aborted) { io.err('demo stopped'); return 130; }
      io.err((e as Error).message);
      return 1;
    }
  },
});
