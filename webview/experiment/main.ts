/** Experiment panel: where the person is in the loop and its next step, the reward backbone, the prompts (which can be added to) and settings. */
import type { ExperimentView, PanelMessage } from '../../src/protocol';
import { h, replaceKeepingFocus } from '../lib/dom';
import { registerToolkit } from '../lib/toolkit';
import { hostBridge } from '../lib/vscodeApi';
import { walkthrough } from '../lib/walkthrough';

registerToolkit();

const host = hostBridge<'experiment'>();
const app = document.getElementById('app')!;

function render(exp: ExperimentView): void {
  const input = h('input', { type: 'text', placeholder: 'Add a prompt, e.g. "a watercolor cat"', 'aria-label': 'New prompt' });
  const form = h('form', { class: 'row' }, input, h('button', { type: 'submit' }, 'Add prompt'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value.trim()) host.post({ type: 'addPrompt', prompt: input.value });
    input.value = '';
  });
  const open = h('button', { class: 'secondary' }, 'Open experiment.json');
  open.addEventListener('click', () => host.post({ type: 'openExperimentFile' }));
  const settings = h('dl', {}, ...Object.entries(exp.settings).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]));
  const prompts = exp.prompts.length ? h('ol', {}, ...exp.prompts.map((p) => h('li', {}, p))) : h('p', { class: 'muted' }, 'No prompts yet.');
  replaceKeepingFocus(app,
    h('h1', {}, exp.name),
    h('p', { class: 'muted' }, `Base model: ${exp.baseModel} · created ${new Date(exp.createdAt).toLocaleString()}`),
    walkthrough(exp.loop, (step) => host.post({ type: 'runStep', step })),
    h('p', { class: 'muted', 'data-testid': 'reward-backbone' }, `Reward model: trains on ${exp.rewardBackbone}${exp.rewardPrior ? `, starting from ${exp.rewardPrior}` : ''}`),
    h('h2', {}, 'Prompts'),
    prompts,
    form,
    h('h2', {}, 'Settings'),
    settings,
    open,
  );
}

host.onMessage((msg: PanelMessage<'experiment'>) => {
  switch (msg.type) {
    case 'experiment':
      return render(msg.experiment);
    case 'error':
      return app.replaceChildren(h('p', { class: 'error' }, msg.message));
    default: {
      const never: never = msg;
      return never;
    }
  }
});

host.post({ type: 'ready' });
