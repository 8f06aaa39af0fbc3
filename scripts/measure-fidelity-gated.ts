/**
 * Diagnosis: where does a fidelity DDPO run lose the prompt's shape? Loads each finished fidelity demo's last DDPO
 * checkpoint and renders the held-out set with the tuned LoRA on only at the first K sampling steps (the base model's
 * UNet at the rest), K = 0 (the base model) … all, then judges each rendering blind against the base images with the
 * demo's rater (its noise set on the experiment's rated samples).
 * Usage: node --import tsx scripts/measure-fidelity-gated.ts WORKSPACE [--ks 0,1,2,3,4,6]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDdpoConfig, settingsFor } from '../src/core/ddpo/config';
import { listCheckpoints, loadCheckpoint } from '../src/core/ddpo/checkpoint';
import { checkpointName, ddpoLayout } from '../src/core/ddpo/layout';
import { createOnnxPolicy } from '../src/core/ddpo/onnxPolicy';
import { judgeBlind, renderEvalSet } from '../src/core/demo/blindEval';
import { makeDemoRater, tasteUtility } from '../src/core/demo/taste';
import { EVAL_SEED_BASE } from '../src/core/demo/settings';
import type { DemoReport } from '../src/core/demo/report';
import { embeddedModelDir } from '../src/core/experiment/modelDir';
import { decodePng } from '../src/core/image/png';
import { listPairs } from '../src/core/studio/pairs';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { ks: { type: 'string' } } });
const ks = (values.ks ?? '0,1,2,3,4,6').split(',').map(Number);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

async function main(): Promise<void> {
  const root = path.join(path.resolve(positionals[0]), '.ddpo');
  const table = new Map<number, { win: number[]; wrong: number[] }>(ks.map((k) => [k, { win: [], wrong: [] }]));
  for (const name of fs.readdirSync(root).sort()) {
    const dir = path.join(root, name);
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as DemoReport;
    const o = report.settings as unknown as { seed: number; evalPrompts: string[]; evalSeeds: number; steps: number; guidance: number };
    const settings = JSON.parse(fs.readFileSync(ddpoLayout(dir).configFile, 'utf8'));
    const config = settingsFor(parseDdpoConfig(settings, 'ddpo.json').config, 'ddpo', 'ddpo.json');
    const policy = await createOnnxPolicy(embeddedModelDir(), config, { threads: 1 });
    try {
      const epochs = listCheckpoints(ddpoLayout(dir).checkpointsDir);
      await policy.loadState(loadCheckpoint(path.join(ddpoLayout(dir).checkpointsDir, checkpointName(epochs[epochs.length - 1]))).policy);
      // the rater's noise as the demo set it: on the rated samples' utilities
      const utility = tasteUtility('fidelity');
      const refs = listPairs(dir).flatMap((p) => [p.a, p.b].map((f) => ({ f, prompt: p.prompt })));
      const utils = refs.map((r) => utility(decodePng(fs.readFileSync(path.join(dir, r.f))) as never, r.prompt));
      const judge = () => makeDemoRater({ taste: 'fidelity', typicalUtilities: utils, typicalPrompts: refs.map((r) => r.prompt), seed: o.seed + 3 });
      const p = policy as unknown as { predict: (...a: unknown[]) => Promise<Float32Array>; predictWith: (lora: unknown, ...a: unknown[]) => Promise<Float32Array>; samplingLora: unknown; samplingLoraFeeds: (zero?: boolean) => unknown };
      const zero = p.samplingLoraFeeds(true);
      const render = async (k: number) => {
        let step = 0;
        // the sampler evaluates the UNet once per step (both halves of guidance in one batch)
        p.predict = (...a: unknown[]) => p.predictWith(step++ < k ? p.samplingLora : zero, ...a);
        const out = [];
        for (const prompt of o.evalPrompts) {
          step = 0;
          out.push(...await renderEvalSet(policy, [prompt], EVAL_SEED_BASE, o.evalSeeds, { steps: o.steps, guidance: o.guidance, eta: config.sample_eta }));
        }
        return out;
      };
      const base = await render(0);
      const line: string[] = [];
      for (const k of ks) {
        const tuned = await render(k);
        const b = judgeBlind(judge(), o.evalPrompts, EVAL_SEED_BASE, base, tuned, o.seed + 4);
        const wrong = b.judgements.filter((j) => j.utilityTuned < 0).length / b.judgements.length;
        table.get(k)!.win.push(b.winRate.rate);
        table.get(k)!.wrong.push(wrong);
        line.push(`K=${k}: win ${pct(b.winRate.rate)}, wrong ${pct(wrong)}`);
      }
      console.log(`${name} (demo's own blind win ${pct(report.eval.winRate.rate)}): ${line.join('; ')}`);
    } finally {
      await policy.release?.();
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const [k, v] of table) console.log(`LoRA at the first ${k} steps: mean blind win ${pct(mean(v.win))}, wrong shape ${pct(mean(v.wrong))}`);
}

main().catch((e) => { console.error((e as Error).stack ?? (e as Error).message); process.exit(1); });
