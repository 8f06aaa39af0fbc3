/** `report.json` of a demo run: every figure, the settings that produced them, and the wall time of each phase. */
import type { CurvePoint } from '../ddpo/rewardCurve';
import type { BlindResult } from './blindEval';
import type { DemoPhase } from './progress';

/** One epoch of the DDPO reward curve (mean learned reward of the epoch's samples). */
export type DemoCurvePoint = CurvePoint;

/** The whole report of a DDPO demo. */
export interface DemoReport extends DemoReportCommon {
  /** Absent in reports written before Diffusion-DPO existed. */
  algorithm?: 'ddpo';
  rewardModel: RewardModelSummary;
  /**
   * `deviationsFromTrl`: TRL DDPOConfig keys the demo sets away from TRL's defaults; `projectSettings`: the keys this
   * project adds that the demo sets away from their defaults. `stoppedEarly`: why train_kl_guard ended DDPO before
   * num_epochs (the LoRA from before the spikes was evaluated).
   */
  ddpo: {
    curve: DemoCurvePoint[];
    settings: Record<string, unknown>;
    deviationsFromTrl: Record<string, { trl: unknown; demo: unknown }>;
    projectSettings: Record<string, { default: unknown; demo: unknown }>;
    checkpointDir: string;
    stoppedEarly?: string;
  };
  eval: DemoReportCommon['eval'] & {
    /** The learned reward model's mean score on the same images (what DDPO optimised). */
    learnedRewardBase: number;
    learnedRewardTuned: number;
  };
}

/** One epoch of a Diffusion-DPO demo: its loss and implicit reward accuracy on the training and the held-out pairs. */
export interface DpoCurvePoint {
  epoch: number;
  loss: number;
  implicitAcc: number;
  heldOutAcc?: number;
  seconds: number;
}

/** The whole report of a Diffusion-DPO demo (`ddpo demo --algorithm diffusion-dpo`): no reward model is trained. */
export interface DpoDemoReport extends DemoReportCommon {
  algorithm: 'diffusion-dpo';
  diffusionDpo: {
    curve: DpoCurvePoint[];
    /** The ddpo.json the run read (its `diffusion_dpo` part is what Diffusion-DPO ran with) and the settings in effect. */
    settings: Record<string, unknown>;
    effective: Record<string, unknown>;
    /** The rated pairs it trained on and held out, and what it left out. */
    pairs: { train: number; heldOut: number; ties: number; skips: number; withoutLatents: number; latents: string };
    checkpointDir: string;
  };
}

/** A report of either demo. */
export type AnyDemoReport = DemoReport | DpoDemoReport;

/** What the reward model of a DDPO demo reports. */
/** `backbone`: the backbone's id (its weights' hash); `backboneLabel`: its name, as the reward card gives it. */
export interface RewardModelSummary { backbone: string; backboneLabel?: string; heldOutAccuracy: number; heldOutDecisive: number; trainComparisons: number; learningCurve: { comparisons: number; accuracy: number }[]; summary: string }

/** What both demos report. */
export interface DemoReportCommon {
  format: 'ddpo-demo-report';
  version: 1;
  createdAt: string;
  experimentDir: string;
  model: string;
  taste: string;
  /** The base model's samples measured by the rater's utility (mean and quartiles). */
  baseModel: { samples: number; utilityMean: number; utilityQuartiles: [number, number, number] };
  ratings: { ratings: number; left: number; right: number; ties: number; repeats: number; raterConsistency: number; raterTieRate: number };
  eval: BlindResult & { prompts: string[]; seeds: number[] };
  grid: { file: string; layout: string; seeds: number[] };
  timings: { phases: Partial<Record<DemoPhase, number>>; totalSeconds: number };
  targets: { maxSeconds: number; minWinRate: number; timeMet: boolean; winRateMet: boolean };
  settings: Record<string, unknown>;
}

/** The demo's targets: done within 3 minutes on two CPU cores, the tuned model winning at least 75% of the blind test. */
export const DEMO_TARGETS = { maxSeconds: 180, minWinRate: 0.75 } as const;

/** The settings the demo changed: for DDPO TRL's keys against TRL's defaults, then this project's against its own. */
export function settingsLines(r: AnyDemoReport): string[] {
  if (r.algorithm === 'diffusion-dpo') return [`Diffusion-DPO settings: ${Object.entries(r.diffusionDpo.effective).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}`];
  const list = (entries: [string, unknown, unknown][]) => entries.map(([k, demo, d]) => `${k}=${JSON.stringify(demo)} (${JSON.stringify(d)})`).join(', ');
  return [
    `DDPO settings that differ from TRL's defaults (TRL's in brackets): ${list(Object.entries(r.ddpo.deviationsFromTrl).map(([k, v]) => [k, v.demo, v.trl]))}`,
    `settings this project adds to TRL's, as the demo sets them (default in brackets): ${list(Object.entries(r.ddpo.projectSettings).map(([k, v]) => [k, v.demo, v.default]))}`,
  ];
}

/** The lines printed at the end of a run. */
export function summaryLines(r: AnyDemoReport): string[] {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const w = r.eval.winRate;
  return [
    `taste of the simulated rater: ${r.taste}`,
    ...trainingLines(r),
    `blind evaluation on ${r.eval.prompts.length} held-out prompts x ${r.eval.seeds.length} held-out seeds: tuned won ${r.eval.wins}, base won ${r.eval.losses}, ties ${r.eval.ties}`,
    `WIN RATE of tuned over base: ${pct(w.rate)} (95% CI ${pct(w.low)} .. ${pct(w.high)}, n = ${w.n})  target >= ${pct(r.targets.minWinRate)}: ${r.targets.winRateMet ? 'met' : 'NOT met'}`,
    `the rater's utility on the held-out images (mean): base ${r.eval.meanUtilityBase.toFixed(3)} -> tuned ${r.eval.meanUtilityTuned.toFixed(3)}` +
      (r.algorithm === 'diffusion-dpo' ? '' : `; learned reward: base ${r.eval.learnedRewardBase.toFixed(3)} -> tuned ${r.eval.learnedRewardTuned.toFixed(3)}`),
    `WALL TIME: ${r.timings.totalSeconds.toFixed(1)} s  target <= ${r.targets.maxSeconds} s: ${r.targets.timeMet ? 'met' : 'NOT met'}  (${Object.entries(r.timings.phases).map(([k, v]) => `${k} ${v!.toFixed(1)} s`).join(', ')})`,
  ];
}

// What the training phase learned: DDPO's reward model and reward curve, or Diffusion-DPO's implicit reward accuracy.
function trainingLines(r: AnyDemoReport): string[] {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  if (r.algorithm === 'diffusion-dpo') {
    const d = r.diffusionDpo;
    const acc = d.curve.map((p) => (p.heldOutAcc === undefined ? 'n/a' : pct(p.heldOutAcc))).join(' -> ');
    return [
      `Diffusion-DPO on ${d.pairs.train} rated pairs (${d.pairs.heldOut} held out; ${d.pairs.ties} ties and ${d.pairs.skips} skips carry no preference), no reward model`,
      `Diffusion-DPO implicit reward accuracy on the held-out pairs per epoch: ${acc}`,
    ];
  }
  return [
    `reward model: ${pct(r.rewardModel.heldOutAccuracy)} accuracy on ${r.rewardModel.heldOutDecisive} held-out pairs (backbone: ${r.rewardModel.backboneLabel ?? r.rewardModel.backbone})`,
    `DDPO reward curve (learned reward, mean per epoch): ${r.ddpo.curve.map((p) => p.reward_mean.toFixed(3)).join(' -> ')}`,
  ];
}
