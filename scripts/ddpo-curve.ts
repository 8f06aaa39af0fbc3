/**
 * Prints the DDPO reward curve (mean reward per epoch) on a small model on the CPU.
 *   node --import tsx scripts/ddpo-curve.ts [--model DIR] [--set key=value ...] [--out DIR] [--threads N]
 * The model defaults to the embedded tiny model (media/tiny-model) when it is built, else the reference fixture.
 * `--set` overrides any ddpo.json key of CPU_CURVE_SETTINGS (values parsed as JSON when they parse).
 * Curves it printed: docs/performance.md, "The CPU reward curve".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSettingOverrides } from '../src/core/ddpo/config';
import { CPU_CURVE_SETTINGS, rewardCurve } from '../src/core/ddpo/rewardCurve';

function defaultModel(): string {
  const tiny = path.resolve(__dirname, '../media/tiny-model');
  if (fs.existsSync(path.join(tiny, 'unet/model.onnx'))) return tiny;
  return path.resolve(__dirname, '../../shared/fixtures/reference-sd');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const sets: string[] = [];
  let model = defaultModel(), out: string | undefined, threads: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i], v = args[i + 1];
    if (a === '--model') { model = v; i++; } else if (a === '--out') { out = v; i++; } else if (a === '--threads') { threads = Number(v); i++; } else if (a === '--set') {
      sets.push(v);
      i++;
    } else throw new Error(`unknown argument ${a}; usage: ddpo-curve.ts [--model DIR] [--set key=value ...] [--out DIR] [--threads N]`);
  }
  const overrides = parseSettingOverrides(sets);
  const settings = { ...CPU_CURVE_SETTINGS, ...overrides };
  console.log(`model ${model}\nsettings ${JSON.stringify(settings)}`);
  const t0 = Date.now();
  const { curve } = await rewardCurve(model, {
    overrides, outDir: out, threads,
    onEpoch: (p) => console.log(`epoch ${p.epoch}  reward ${p.reward_mean.toFixed(4)} ± ${p.reward_std.toFixed(4)}  kl ${p.approx_kl.toExponential(2)}  clipfrac ${p.clipfrac.toFixed(3)}  ${p.seconds.toFixed(1)} s`),
  });
  console.log(`curve: ${curve.map((p) => p.reward_mean.toFixed(4)).join(' ')}  (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

main().catch((e) => { console.error((e as Error).message); process.exit(1); });
