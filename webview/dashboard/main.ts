/**
 * Training dashboard: run state, the run's charts (DDPO: reward, KL, clip fraction; Diffusion-DPO: loss and implicit
 * reward accuracy), the newest evaluation images, the latest blind comparison's win rate.
 */
import type { DashboardView, PanelMessage, TrainingAlgorithm } from '../../src/protocol';
import { fmt, lineChart } from '../lib/chart';
import { h, replaceKeepingFocus } from '../lib/dom';
import { registerToolkit } from '../lib/toolkit';
import { hostBridge } from '../lib/vscodeApi';
import { walkthrough } from '../lib/walkthrough';

registerToolkit();
const host = hostBridge<'dashboard'>();
const app = document.getElementById('app')!;

const STATE_TEXT: Record<DashboardView['state'], string> = {
  idle: 'Not started',
  running: 'Running',
  done: 'Done',
  failed: 'Failed',
  stopped: 'Stopped',
  interrupted: 'Interrupted (the worker stopped mid-run)',
};


const RUN_NAMES: Record<TrainingAlgorithm, string> = { ddpo: 'DDPO', 'diffusion-dpo': 'Diffusion-DPO' };

// DDPO charts what it optimises (the learned reward) and how far the policy moves; Diffusion-DPO its loss and how
// often the tuned model prefers the rated winner (the sign of the DPO margin), on the training and the held-out pairs.
function charts(v: DashboardView): HTMLElement {
  const section = h('section', { class: 'charts', 'aria-label': 'Training charts' });
  if (v.algorithm === 'diffusion-dpo') {
    const xs = v.dpoPoints.map((p) => p.epoch);
    const held = v.dpoPoints.filter((p) => p.heldOutAcc !== null);
    section.append(
      lineChart({ title: 'Implicit reward accuracy, held-out pairs', xs: held.map((p) => p.epoch), ys: held.map((p) => p.heldOutAcc!) }),
      lineChart({ title: 'Implicit reward accuracy, training pairs', xs, ys: v.dpoPoints.map((p) => p.implicitAcc) }),
      lineChart({ title: 'Diffusion-DPO loss', xs, ys: v.dpoPoints.map((p) => p.loss) }),
    );
    return section;
  }
  const xs = v.points.map((p) => p.epoch);
  section.append(
    lineChart({ title: 'Reward mean ± std', xs, ys: v.points.map((p) => p.rewardMean), band: v.points.map((p) => p.rewardStd) }),
    lineChart({ title: 'Approx. KL', xs, ys: v.points.map((p) => p.approxKl) }),
    lineChart({ title: 'Clip fraction', xs, ys: v.points.map((p) => p.clipfrac) }),
  );
  return section;
}

// Buttons to show the experiment's other run (DDPO or Diffusion-DPO) when it has both.
function runSwitch(v: DashboardView): HTMLElement | string {
  if (v.runs.length < 2) return '';
  const row = h('div', { class: 'row', role: 'group', 'aria-label': 'Fine-tuning run shown' });
  for (const a of v.runs) {
    const b = h('vscode-button', { appearance: a === v.algorithm ? 'primary' : 'secondary', 'aria-pressed': String(a === v.algorithm), 'data-testid': `run-${a}` }, RUN_NAMES[a]);
    b.addEventListener('click', () => host.post({ type: 'showRun', algorithm: a }));
    row.append(b);
  }
  return row;
}

// The run's state line stays one element for the panel's life, its live part (state and epochs finished) changed only
// in its text, so a screen reader announces a run starting, finishing or failing; the phase beside it changes several
// times a second and is not announced. What is above and below it is redrawn.
const ringSlot = h('span', { 'aria-hidden': 'true' }, h('vscode-progress-ring', { class: 'inline-ring' }));
const stateText = h('span', { role: 'status', 'aria-live': 'polite' });
const phaseText = h('span', { class: 'muted' });
const stateLine = h('p', { 'data-testid': 'run-state' }, ringSlot, stateText, phaseText);
const top = h('div');
const bottom = h('div');

const setText = (el: HTMLElement, text: string) => { if (el.textContent !== text) el.textContent = text; };

function render(v: DashboardView): void {
  const finished = v.algorithm === 'diffusion-dpo' ? v.dpoPoints.length : v.points.length;
  if (app.firstChild !== top) app.replaceChildren(top, stateLine, bottom);
  stateLine.className = `state state-${v.state}`;
  ringSlot.hidden = v.state !== 'running';
  setText(stateText, `${STATE_TEXT[v.state]} · ${finished} of ${v.numEpochs} epochs finished`);
  setText(phaseText, v.phase ? ` · ${v.phase}` : '');
  const actions = h('div', { class: 'row' });
  if (v.state === 'running') {
    const stop = h('vscode-button', { appearance: 'secondary', 'aria-label': 'Stop fine-tuning (keeps checkpoints)' }, 'Stop');
    stop.addEventListener('click', () => host.post({ type: 'stopRun' }));
    actions.append(stop);
  } else if (v.state !== 'done' && v.state !== 'idle') {
    const resume = h('vscode-button', { appearance: 'primary', 'aria-label': 'Resume fine-tuning from the newest checkpoint' }, 'Resume');
    resume.addEventListener('click', () => host.post({ type: 'resumeRun' }));
    actions.append(resume);
  }
  const images = v.evalImages.length
    ? h('div', { class: 'eval-grid' }, ...v.evalImages.map((e) => h('figure', { class: 'eval' },
        h('img', { src: e.uri, alt: `Evaluation image for "${e.prompt}", seed ${e.seed}` }),
        h('figcaption', {}, h('span', {}, e.prompt), h('span', { class: 'muted' }, ` seed ${e.seed}${Number.isFinite(e.reward) ? ` · reward ${fmt(e.reward)}` : ''}`)))))
    : h('p', { class: 'muted' }, 'Evaluation images appear after the first epoch starts.');
  const win = v.winRate
    ? h('p', { class: 'winrate', 'data-testid': 'win-rate' }, `Blind comparison, ${v.winRate.label ?? `epoch ${v.winRate.epoch + 1} vs base`}: win rate ${Math.round(v.winRate.rate * 100)}% (95% CI ${Math.round(v.winRate.low * 100)}–${Math.round(v.winRate.high * 100)}%, n=${v.winRate.n})`)
    : h('p', { class: 'muted' }, 'No blind comparison yet: run "Compare with Base Model" on a checkpoint.');
  replaceKeepingFocus(top,
    h('h1', {}, `Training: ${v.experiment} · ${RUN_NAMES[v.algorithm]}`),
    walkthrough(v.loop, (step) => host.post({ type: 'runStep', step })),
    runSwitch(v),
  );
  replaceKeepingFocus(bottom,
    // a finished run's message is a note (the divergence guard stopped it early); a failed or stopped run's is an error
    v.message && v.state !== 'running' ? h('p', { class: v.state === 'done' ? 'note' : 'error' }, v.message) : '',
    actions,
    charts(v),
    h('h2', {}, v.evalEpoch === undefined ? 'Evaluation images' : `Evaluation images (epoch ${v.evalEpoch + 1})`),
    images,
    h('h2', {}, 'Win rate'),
    win,
  );
}

host.onMessage((msg: PanelMessage<'dashboard'>) => {
  switch (msg.type) {
    case 'dashboard':
      return render(msg.view);
    case 'error':
      return app.replaceChildren(h('p', { class: 'error' }, msg.message));
    default: {
      const never: never = msg;
      return never;
    }
  }
});

app.replaceChildren(h('vscode-progress-ring', { 'aria-label': 'Loading' }));
host.post({ type: 'ready' });
