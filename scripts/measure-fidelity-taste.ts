/**
 * Measures `ddpo demo --taste fidelity` (big shapes, but only of the shape the prompt names) per reward backbone over
 * seeds: each seed's demo runs once per backbone, on the same base images and the same ratings (checked), and the
 * table gives the reward model's held-out accuracy, the blind win rate of tuned over base, and how often the held-out
 * images show another shape than the prompt's (base -> tuned). The ceiling row is the rater's own utility scored on the
 * same held-out ratings: what a reward model that knew the taste exactly would reach against the rater's noise.
 * Usage: node --import tsx scripts/measure-fidelity-taste.ts [--seeds 0,1,2,3,4] [--backbones builtin,embedded:tiny-clip]
 *        [--workspace DIR] [--json OUT.json] [--with EARLIER.json] [--threads N] [--head linear|mlp] [--prior NAME] [--epochs N] [--rounds N] [--set KEY=VALUE ...]
 * `--with` adds the rows of an earlier run's --json (another backbone on the same seeds) to the table, checking the ratings.
 * `diffusion-dpo` among the backbones runs the Diffusion-DPO demo instead: no reward model, the LoRA learns from the
 * same rated pairs (its "reward held-out accuracy" is the implicit reward's held-out accuracy after the last epoch).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseSettingOverrides } from '../src/core/ddpo/config';
import { roundShare, runDemo } from '../src/core/demo/run';
import type { AnyDemoReport } from '../src/core/demo/report';
import { fullDemoOptions, withTaste } from '../src/core/demo/settings';
import { tasteUtility } from '../src/core/demo/taste';
import { heldOutUtilityAccuracy } from '../src/core/reward/experiment';
import { isPriorName, PRIOR_NAMES } from '../src/core/reward/priorNames';
import { readRatings } from '../src/core/reward/store';

/** One demo run's figures. */
interface Row {
  seed: number;
  backbone: string;
  label: string;
  accuracy: number;
  winRate: number;
  wrongBase: number;
  wrongTuned: number;
  seconds: number;
  /** sha256 of what was rated (prompt, sides, choice per rating). */
  ratings: string;
  /** The rater's own utility's accuracy on the held-out decisive ratings. */
  ceiling: number;
}

const { values } = parseArgs({ options: { seeds: { type: 'string' }, backbones: { type: 'string' }, workspace: { type: 'string' }, json: { type: 'string' }, with: { type: 'string' }, threads: { type: 'string' }, head: { type: 'string' }, prior: { type: 'string' }, epochs: { type: 'string' }, rounds: { type: 'string' }, set: { type: 'string', multiple: true } } });
const seeds = (values.seeds ?? '0,1,2,3,4').split(',').map(Number);
const backbones = (values.backbones ?? 'builtin,embedded:tiny-clip').split(',');
const workspace = path.resolve(values.workspace ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fidelity-taste-')));
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

// The fidelity utility is the shape's share of the picture, less 1 when the shape is not the prompt's: below 0 is a wrong shape.
const wrongShare = (r: AnyDemoReport, side: 'utilityBase' | 'utilityTuned') => r.eval.judgements.filter((j) => j[side] < 0).length / r.eval.judgements.length;

// What was rated of the base model's samples, without ids and times: equal across backbones when the runs saw the
// same ratings (later rounds rate each run's own tuned samples).
const ratingsKey = (dir: string, first: number) => createHash('sha256').update(JSON.stringify(readRatings(dir).ratings.slice(0, first).map((r) => [r.prompt, r.left, r.right, r.choice]))).digest('hex');

/** The pseudo-backbone that runs the Diffusion-DPO demo. */
const DPO = 'diffusion-dpo';

async function runOne(seed: number, backbone: string): Promise<Row> {
  const dpo = backbone === DPO;
  const o = { ...withTaste(fullDemoOptions(workspace), 'fidelity'), seed, ...(dpo ? { algorithm: 'diffusion-dpo' as const } : { backbone }), name: `fidelity-s${seed}-${backbone.replace(/[^a-z0-9]+/gi, '_')}` };
  if (values.threads) o.threads = Number(values.threads);
  if (values.epochs) { o.epochs = Number(values.epochs); o.dpoEpochs = Number(values.epochs); }
  if (values.rounds) o.rounds = Number(values.rounds);
  if (values.set) o.ddpo = parseSettingOverrides(values.set);
  if (values.head === 'mlp' || values.head === 'linear') o.rewardHead = values.head;
  else if (values.head) throw new Error(`--head ${values.head}: use linear or mlp`);
  if (isPriorName(values.prior)) o.rewardPrior = values.prior;
  else if (values.prior) throw new Error(`--prior ${values.prior}: use one of ${PRIOR_NAMES.join(', ')}`);
  const { report: r, experimentDir } = await runDemo(o);
  const [label, accuracy] = r.algorithm === 'diffusion-dpo' ? ['Diffusion-DPO (no reward model)', r.diffusionDpo.curve[r.diffusionDpo.curve.length - 1]?.heldOutAcc ?? NaN]
    : [r.rewardModel.backboneLabel ?? r.rewardModel.backbone, r.rewardModel.heldOutAccuracy];
  const row: Row = {
    seed, backbone, label, accuracy, winRate: r.eval.winRate.rate,
    wrongBase: wrongShare(r, 'utilityBase'), wrongTuned: wrongShare(r, 'utilityTuned'), seconds: r.timings.totalSeconds, ratings: ratingsKey(experimentDir, roundShare(o.pairs, 0, o.rounds ?? 1)), ceiling: heldOutUtilityAccuracy(experimentDir, tasteUtility('fidelity')),
  };
  console.log(`seed ${seed} ${label}: reward ${pct(row.accuracy)} held-out, blind win ${pct(row.winRate)}, wrong shape ${pct(row.wrongBase)} -> ${pct(row.wrongTuned)}, ${row.seconds.toFixed(0)} s`);
  return row;
}

function table(rows: Row[]): string {
  const backbones = [...new Set(rows.map((r) => r.backbone))];
  const lines = [`| backbone | figure | ${seeds.map((s) => `seed ${s}`).join(' | ')} | mean |`, `|---|---|${seeds.map(() => '---').join('|')}|---|`];
  const ceilings = seeds.map((s) => rows.find((r) => r.seed === s)!.ceiling);
  lines.push(`| (the taste itself) | ceiling: the rater's utility on the same held-out ratings | ${ceilings.map(pct).join(' | ')} | **${pct(mean(ceilings))}** |`);
  for (const b of backbones) {
    const mine = seeds.map((s) => rows.find((r) => r.seed === s && r.backbone === b)!);
    const line = (name: string, f: (r: Row) => number, fmt = pct) => `| ${b} | ${name} | ${mine.map((r) => fmt(f(r))).join(' | ')} | **${fmt(mean(mine.map(f)))}** |`;
    lines.push(line('reward held-out accuracy', (r) => r.accuracy), line('blind win rate', (r) => r.winRate),
      line('wrong shape, base', (r) => r.wrongBase), line('wrong shape, tuned', (r) => r.wrongTuned), line('wall time', (r) => r.seconds, (x) => `${x.toFixed(0)} s`));
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const earlier: Row[] = values.with ? (JSON.parse(fs.readFileSync(values.with, 'utf8')) as { rows: Row[] }).rows : [];
  const rows: Row[] = [];
  for (const seed of seeds) for (const b of backbones) rows.push(await runOne(seed, b));
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ seeds, backbones, rows }, null, 2) + '\n');
  const all = [...earlier.filter((r) => seeds.includes(r.seed)), ...rows];
  for (const seed of seeds) {
    if (new Set(all.filter((r) => r.seed === seed).map((r) => r.ratings)).size !== 1) throw new Error(`seed ${seed}: the backbones' runs were rated differently; the comparison needs the same ratings`);
  }
  console.log(`\n${table(all)}\n\n(workspace ${workspace}; each seed's runs saw identical ratings)`);
}

main().catch((e) => { console.error((e as Error).stack ?? (e as Error).message); process.exit(1); });
