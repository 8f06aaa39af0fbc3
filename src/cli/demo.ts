import * as path from 'node:path';
import { parseFlags, type CliCommand, type FlagTable } from './command';
import { formatProgress, type DemoProgress } from '../core/demo/progress';
import { summaryLines } from '../core/demo/report';
import { runDemo } from '../core/demo/run';
import { fullDemoOptions, quickDemoOptions } from '../core/demo/settings';

// Every `--set key=value` (parseFlags keeps only the last one).
function setFlags(argv: string[]): string[] {
  return argv.flatMap((a, i) => (a === '--set' && i + 1 < argv.length ? [argv[i + 1]] : a.startsWith('--set=') ? [a.slice(6)] : []));
}

const FLAGS: FlagTable = {
  workspace: 'text', out: 'text', name: 'text', seed: 'integer', pairs: 'integer', epochs: 'integer', threads: 'integer',
  taste: ['big', 'warm'], set: 'text', quick: 'boolean',
};

/** `ddpo demo [--workspace DIR] [--out DIR] [--seed N] [--pairs N] [--epochs N] [--quick]` */
export const demoCommand: CliCommand = {
  path: ['demo'],
  summary: 'Watch a model learn a simulated rater\'s taste on the embedded model, in minutes, no GPU or download',
  flags: FLAGS,
  usage: 'ddpo demo [--workspace DIR] [--out DIR] [--name NAME] [--seed N] [--pairs N] [--epochs N] [--threads N] [--quick]\n' +
    '  Creates <workspace>/.ddpo/demo-<time>/ on the embedded tiny model and runs, with progress:\n' +
    '   1 generate  base images of 6 training prompts, and of 8 held-out prompts x 10 held-out seeds\n' +
    '   2 rate      a simulated rater who likes BIG shapes (90% consistent, 5% ties) rates same-prompt pairs\n' +
    '   3 reward    a reward model learns the rater from ratings.jsonl (held-out accuracy printed)\n' +
    '   4 ddpo      DDPO fine-tunes a LoRA against the learned reward (reward curve per epoch)\n' +
    '   5 eval      blind test: base and tuned images of the same held-out prompt and seed, sides shuffled,\n' +
    '               judged by the rater; win rate of tuned over base with a 95% Wilson interval\n' +
    '   6 report    report.json (all figures, settings, timings) and grid.png (BASE left, TUNED right)\n' +
    '  --workspace DIR  where .ddpo/ goes (default: current folder)\n' +
    '  --out DIR        where report.json and grid.png go (default: the experiment folder)\n' +
    '  --pairs N        rated pairs (default 300)      --epochs N  DDPO epochs (default 20)\n' +
    '  --taste big|warm the simulated rater\'s taste (default big)\n' +
    '  --set KEY=VALUE  override a ddpo.json setting of the demo (repeatable), e.g. --set train_learning_rate=0.005\n' +
    '  --quick          a reduced run (about a minute): fewer pairs, 1 short epoch, a small evaluation',
  async run(argv, io) {
    const { flags } = parseFlags(argv, FLAGS);
    const workspace = path.resolve(typeof flags.workspace === 'string' ? flags.workspace : '.');
    const o = flags.quick === true ? quickDemoOptions(workspace) : fullDemoOptions(workspace);
    for (const [flag, key] of [['seed', 'seed'], ['pairs', 'pairs'], ['epochs', 'epochs'], ['threads', 'threads']] as const) {
      const v = flags[flag];
      if (v === undefined) continue;
      const n = Number(v);
      if (typeof v !== 'string' || !Number.isInteger(n) || n < (flag === 'seed' ? 0 : 1)) { io.err(`--${flag} expects a ${flag === 'seed' ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(v)}`); return 2; }
      o[key] = n;
    }
    if (typeof flags.out === 'string') o.out = path.resolve(flags.out);
    if (typeof flags.name === 'string') o.name = flags.name;
    for (const kv of setFlags(argv)) {
      const eq = kv.indexOf('=');
      if (eq < 1) { io.err(`--set expects key=value (a ddpo.json key), got ${JSON.stringify(kv)}`); return 2; }
      const raw = kv.slice(eq + 1);
      let v: unknown = raw;
      try { v = JSON.parse(raw); } catch { /* a plain string */ }
      o.ddpo = { ...o.ddpo, [kv.slice(0, eq)]: v };
      if (kv.slice(0, eq) === 'sample_batch_size') o.sampleBatch = Number(v);
      if (kv.slice(0, eq) === 'sample_num_batches_per_epoch') o.batchesPerEpoch = Number(v);
    }
    if (flags.taste !== undefined) {
      if (flags.taste !== 'big' && flags.taste !== 'warm') { io.err(`--taste expects big or warm, got ${JSON.stringify(flags.taste)}`); return 2; }
      o.taste = flags.taste;
    }
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
      const dev = Object.entries(r.report.ddpo.deviationsFromTrl).map(([k, v]) => `${k}=${JSON.stringify(v.demo)} (TRL ${JSON.stringify(v.trl)})`).join(', ');
      io.out(`DDPO settings that differ from TRL's defaults: ${dev}`);
      for (const line of summaryLines(r.report)) io.out(line);
      io.out(`report: ${r.reportFile}`);
      io.out(`grid:   ${r.gridFile}  (BASE left, TUNED right; one row per held-out prompt, same seed per column)`);
      return 0;
    } catch (e) {
      if (io.signal.aborted) { io.err('demo stopped'); return 130; }
      io.err((e as Error).message);
      return 1;
    }
  },
};
