/** Progress of the demo's phases: which phase, how far, and an estimate of the time left. */

/** The DDPO demo's phases, in order. */
export const DEMO_PHASES = ['generate', 'rate', 'reward', 'ddpo', 'eval', 'report'] as const;
/** The Diffusion-DPO demo's phases: no reward model, the LoRA learns from the rated pairs. */
export const DPO_DEMO_PHASES = ['generate', 'rate', 'dpo', 'eval', 'report'] as const;
/** One phase of either demo. */
export type DemoPhase = (typeof DEMO_PHASES)[number] | (typeof DPO_DEMO_PHASES)[number];

/** One progress report. */
export interface DemoProgress {
  phase: DemoPhase;
  /** 1-based position of the phase and the number of phases. */
  index: number;
  phases: number;
  /** Share of this phase done, 0..1. */
  fraction: number;
  /** Seconds since the demo started and estimated seconds left in this phase (NaN before any progress). */
  elapsedS: number;
  etaS: number;
  detail: string;
}

/** Turns "n of m done" into {@link DemoProgress} with a linear ETA per phase, and records each phase's wall time. */
export class PhaseClock {
  private readonly t0 = performance.now();
  private phaseStart = this.t0;
  private current: DemoPhase | undefined;
  /** Wall seconds of each finished phase (summed over its turns, for a phase that comes round again). */
  readonly seconds: Partial<Record<DemoPhase, number>> = {};

  constructor(private readonly sink: (p: DemoProgress) => void = () => undefined, private readonly phases: readonly DemoPhase[] = DEMO_PHASES) {}

  /** Seconds since the clock started. */
  elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }

  /** Starts `phase` (closing the previous one) and reports 0%. */
  start(phase: DemoPhase, detail = ''): void {
    this.finish();
    this.current = phase;
    this.phaseStart = performance.now();
    this.report(0, detail);
  }

  /** Reports `done` of `total` in the current phase. */
  report(done: number, detail = '', total = 1): void {
    if (!this.current) return;
    const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
    const inPhase = (performance.now() - this.phaseStart) / 1000;
    const etaS = fraction > 0 ? (inPhase / fraction) * (1 - fraction) : NaN;
    this.sink({ phase: this.current, index: this.phases.indexOf(this.current) + 1, phases: this.phases.length, fraction, elapsedS: this.elapsed(), etaS, detail });
  }

  /** Closes the current phase, recording its wall time. */
  finish(): void {
    if (!this.current) return;
    this.seconds[this.current] = (this.seconds[this.current] ?? 0) + (performance.now() - this.phaseStart) / 1000;
    this.current = undefined;
  }
}

/** One line for a terminal: `[4/6] ddpo  45%  epoch 3/6 train  (phase ETA 0:21, elapsed 1:02)`. */
export function formatProgress(p: DemoProgress): string {
  const pct = `${Math.round(p.fraction * 100)}%`.padStart(4);
  const eta = Number.isFinite(p.etaS) ? `phase ETA ${clock(p.etaS)}, ` : '';
  return `[${p.index}/${p.phases}] ${p.phase.padEnd(8)} ${pct}  ${p.detail}  (${eta}elapsed ${clock(p.elapsedS)})`;
}

/** Seconds as m:ss. */
export function clock(s: number): string {
  const t = Math.max(0, Math.round(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}
