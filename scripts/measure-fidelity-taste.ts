/**
 * Measures the fidelity taste (bigger shapes only while the shape is the one the prompt names) on the demo's loop:
 * reward-head held-out accuracy from the built-in features against the tiny CLIP with the prompt, same ratings, per seed.
 * Usage: node --import tsx scripts/measure-fidelity-taste.ts [--seeds 0,1,2,3,4] [--prompts fidelity|demo] [--clip media/tiny-clip]
 *        [--model media/tiny-model] [--pairs 300] [--images-per-prompt 16] [--json OUT.json]
 */
import { writeFileSync } from 'node:fs';
import { FIDELITY_PROMPTS, runFidelityBench, type FidelitySeedResult } from '../src/core/bench/fidelityTaste';
import { DEMO_TRAIN_PROMPTS } from '../src/core/demo/taste';
import { fullDemoOptions } from '../src/core/demo/settings';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function table(rs: FidelitySeedResult[]): string {
  const rows = [
    `| seed | ${rs.map((r) => r.seed).join(' | ')} | mean |`,
    `|---|${rs.map(() => '---').join('|')}|---|`,
    `| built-in features | ${rs.map((r) => pct(r.builtin.accuracy)).join(' | ')} | **${pct(mean(rs.map((r) => r.builtin.accuracy)))}** |`,
    `| tiny CLIP + prompt | ${rs.map((r) => pct(r.clip.accuracy)).join(' | ')} | **${pct(mean(rs.map((r) => r.clip.accuracy)))}** |`,
    `| right vs wrong shape pairs | ${rs.map((r) => pct(r.mixedShare)).join(' | ')} | ${pct(mean(rs.map((r) => r.mixedShare)))} |`,
    `| held-out comparisons | ${rs.map((r) => r.heldOut).join(' | ')} | |`,
  ];
  return rows.join('\n');
}

async function main(): Promise<void> {
  const seeds = flag('seeds', '0,1,2,3,4').split(',').map(Number);
  const which = flag('prompts', 'fidelity');
  const prompts = which === 'demo' ? DEMO_TRAIN_PROMPTS : FIDELITY_PROMPTS;
  const started = Date.now();
  const results = await runFidelityBench({
    modelDir: flag('model', 'media/tiny-model'), clipDir: flag('clip', 'media/tiny-clip'), prompts, seeds,
    imagesPerPrompt: Number(flag('images-per-prompt', '16')), pairs: Number(flag('pairs', '300')), l1: fullDemoOptions('.').rewardL1,
    log: (l) => console.log(l),
  });
  console.log(`\n${which} prompts (${((Date.now() - started) / 60000).toFixed(1)} min):\n${table(results)}`);
  const wrong = prompts.map((p) => `${p}: ${pct(mean(results.map((r) => r.wrongShape[p])))}`);
  console.log(`\nbase images whose shape is not the prompt's (mean over seeds):\n  ${wrong.join('\n  ')}`);
  const out = process.argv.includes('--json') ? flag('json', '') : '';
  if (out) writeFileSync(out, JSON.stringify({ prompts, results }, null, 2) + '\n');
}

main().catch((e) => { console.error((e as Error).stack ?? (e as Error).message); process.exit(1); });
