/** The walkthrough (dashboard, experiment panel): where the person is in the loop, and its next step as a button. */
import type { LoopView } from '../../src/protocol';
import { h } from './dom';

const pct = (x: number | undefined) => (x === undefined ? '–' : `${Math.round(x * 100)}%`);

/** The walkthrough's section; its button calls `onStep` with the step's name (the host runs the studio command). */
export function walkthrough(l: LoopView, onStep: (step: string) => void): HTMLElement {
  const stat = (label: string, value: string, id: string) => h('div', { class: 'loop-stat', 'data-testid': id }, h('span', { class: 'muted' }, label), ' ', h('strong', {}, value));
  const next = h('div', { class: 'row loop-next' }, h('p', { 'data-testid': 'next-step-why' }, l.next.why));
  if (l.next.step) {
    const step = l.next.step;
    const button = h('vscode-button', { appearance: 'primary', 'data-testid': 'next-step' }, l.next.label ?? step);
    button.addEventListener('click', () => onStep(step));
    next.prepend(button);
  }
  return h('section', { class: 'loop', 'aria-label': 'Where you are' },
    h('div', { class: 'row' },
      stat('Rated', `${l.rated} ${l.rated === 1 ? 'pair' : 'pairs'}`, 'loop-rated'),
      stat('Reward accuracy', pct(l.rewardAccuracy), 'loop-reward'),
      stat('Fine-tuning', `${l.epochsDone} of ${l.numEpochs} epochs`, 'loop-epochs'),
      stat('Last blind win rate', pct(l.winRate), 'loop-win')),
    next);
}
