/**
 * How far DDPO itself takes the fidelity taste (`ddpo demo --taste fidelity`) when its reward needs no learning: the
 * same demo per seed (base images, 300 ratings that set the judge's noise, the blind test), but DDPO fine-tunes against
 * a fixed reward instead of a reward model learned from the ratings:
 * - `utility`: the rater's own utility (the taste exactly, without its noise): what a perfect reward model would give;
 * - `outline`: the shape's share of the picture, less 1 where a judge made apart from the rater's test (shapeJudges.ts)
 *   finds another shape than the prompt's: a reward that sees shapes well, but not as the rater does.
 * Usage: node --import tsx scripts/measure-fidelity-oracle.ts [--rewards utility,outline] [--seeds 0,1,2,3,4]
 *        [--set KEY=VALUE ...] [--workspace DIR]
 * `--set` overrides the demo's ddpo.json (e.g. train_timestep_fraction=1), values parsed as JSON when they parse.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDdpoConfig, parseSettingOverrides, settingsFor } from '../src/core/ddpo/config';
import { trainExperiment } from '../src/core/ddpo/experimentRun';
import { ddpoLayout } from '../src/core/ddpo/layout';
import { createOnnxPolicy } from '../src/core/ddpo/onnxPolicy';
import type { RewardFn } from '../src/core/ddpo/types';
import { renderEvalSet } from '../src/core/demo/blindEval';
import { generateSamples } from '../src/core/demo/pairs';
import { createDemoExperiment, judgeDemoBlind, rateDemoSamples } from '../src/core/demo/run';
import { demoDdpoSettings, EVAL_SEED_BASE, fullDemoOptions, withTaste } from '../src/core/demo/settings';
import { embeddedModelDir } from '../src/core/experiment/modelDir';
import { fidelityUtility, promptShape, WRONG_SHAPE_PENALTY } from '../src/core/tiny/fidelity';
import { measureImage } from '../src/core/tiny/measure';
import { outlineProfileJudge } from './shapeJudges';

const { values } = parseArgs({ options: { rewards: { type: 'string' }, seeds: { type: 'string' }, set: { type: 'string', multiple: true }, workspace: { type: 'string' } } });
const seeds = (values.seeds ?? '0,1,2,3,4').split(',').map(Number);
const workspace = path.resolve(values.workspace ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fidelity-oracle-')));
const overrides = parseSettingOverrides(values.set ?? []);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function rewardOf(name: string): RewardFn {
  if (name === 'utility') return async (images, prompts) => images.map((img, k) => fidelityUtility(img, prompts[k]));
  if (name === 'outline') {
    const { judge } = outlineProfileJudge();
    return async (images, prompts) => images.map((img, k) => measureImage(img).area - (judge(img) === promptShape(prompts[k]) ? 0 : WRONG_SHAPE_PENALTY));
  }
  throw new Error(`--rewards: unknown reward "${name}"; use utility or outline`);
}

/** One run's blind result. */
interface OracleRow { win: number; wrong: number; seconds: number; stopped?: string }

async function runOne(name: string, seed: number): Promise<OracleRow> {
  const o = { ...withTaste(fullDemoOptions(workspace), 'fidelity'), seed };
  const modelDir = embeddedModelDir();
  const dir = await createDemoExperiment(o, modelDir, `${name}-s${seed}`);
  const settings = { ...demoDdpoSettings(o), ...overrides };
  fs.writeFileSync(ddpoLayout(dir).configFile, JSON.stringify(settings, null, 2) + '\n');
  const config = settingsFor(parseDdpoConfig(settings, 'ddpo.json').config, 'ddpo', 'ddpo.json');
  const policy = await createOnnxPolicy(modelDir, config, {});
  try {
    const sampling = { steps: o.steps, guidance: o.guidance, eta: config.sample_eta };
    const samples = await generateSamples(policy, dir, o.trainPrompts, o.imagesPerPrompt, { ...sampling, seed });
    const base = await renderEvalSet(policy, o.evalPrompts, EVAL_SEED_BASE, o.evalSeeds, sampling);
    const rated = { base, ...rateDemoSamples(o, dir, samples) };
    const t0 = Date.now();
    const run = await trainExperiment(dir, { policy, algorithm: 'ddpo', reward: rewardOf(name) });
    const blind = judgeDemoBlind(o, rated, await renderEvalSet(policy, o.evalPrompts, EVAL_SEED_BASE, o.evalSeeds, sampling));
    return { win: blind.winRate.rate, wrong: blind.judgements.filter((j) => j.utilityTuned < 0).length / blind.judgements.length, seconds: (Date.now() - t0) / 1000, stopped: run.stoppedEarly?.message };
  } finally {
    await policy.release?.();
  }
}

async function main(): Promise<void> {
  console.log(`ddpo.json over the fidelity demo's: ${JSON.stringify(overrides)}`);
  for (const name of (values.rewards ?? 'utility,outline').split(',')) {
    const rows: OracleRow[] = [];
    for (const seed of seeds) {
      const r = await runOne(name, seed);
      rows.push(r);
      console.log(`${name} seed ${seed}: blind win ${pct(r.win)}, wrong shape tuned ${pct(r.wrong)}, DDPO ${r.seconds.toFixed(0)} s${r.stopped ? ` (${r.stopped})` : ''}`);
    }
    const mean = (f: (r: OracleRow) => number) => rows.reduce((s, r) => s + f(r), 0) / rows.length;
    console.log(`${name}: mean blind win ${pct(mean((r) => r.win))}, wrong shape tuned ${pct(mean((r) => r.wrong))}`);
  }
  console.log(`(workspace ${workspace})`);
}

main().catch((e) => { console.error((e as Error).stack ?? (e as Error).message); process.exit(1); });
