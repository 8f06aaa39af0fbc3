/**
 * Rating panel: two images and the prompt; keys 1/Left, 2/Right, T or =, S, U or Ctrl+Z, Z to zoom.
 * A rating counts as saved only when the host says the store confirmed it.
 */
import type { PanelMessage, RatingItemView, RatingView } from '../../src/protocol';
import type { Choice } from '../../src/protocol';
import { h, replaceKeepingFocus } from '../lib/dom';
import { registerToolkit } from '../lib/toolkit';
import { hostBridge } from '../lib/vscodeApi';

registerToolkit();
const host = hostBridge<'rating'>();
const app = document.getElementById('app')!;
let view: RatingView | undefined;
// Ids sent to the host and not yet confirmed: they are skipped so the next pair shows at once.
const pending = new Set<string>();
let shownId: string | undefined;
let shownAt = performance.now();
let zoom = false;
let status = '';
// An undo sent and not yet answered: its "Undoing…" stays until the log shows one rating fewer.
let undoing = false;
// The status line is one element for the panel's life, changed only in its text, so screen readers announce each
// change ("Saved ✓", "Undone ✓", an error); the pair and the keys above and below it are redrawn.
const top = h('div');
const live = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
const bottom = h('div');
app.replaceChildren(top, live, bottom);
const preloaded = new Set<string>();

function current(): RatingItemView | undefined {
  return view?.items.find((i) => !pending.has(i.id));
}

function choose(choice: Choice): void {
  const item = current();
  if (!item) return;
  pending.add(item.id);
  host.post({ type: 'rate', itemId: item.id, choice, elapsedMs: Math.round(performance.now() - shownAt) });
  status = `Saving your answer (${choice})…`;
  render();
}

function undo(): void {
  if (!view?.canUndo && pending.size === 0) return;
  host.post({ type: 'undo' });
  undoing = true;
  status = 'Undoing the last rating…';
  render();
}

function button(label: string, key: string, aria: string, onClick: () => void, appearance = 'secondary'): HTMLElement {
  const b = h('vscode-button', { appearance, 'aria-label': aria, title: `${aria} (${key})` }, label, h('span', { class: 'key', 'aria-hidden': 'true' }, key));
  b.addEventListener('click', onClick);
  return b;
}

function image(uri: string, side: string, prompt: string): HTMLElement {
  const img = h('img', { src: uri, alt: `${side} image for "${prompt}"`, class: zoom ? 'pair-img zoomed' : 'pair-img' });
  img.addEventListener('click', () => {
    zoom = !zoom;
    render();
  });
  return h('figure', { class: 'side' }, img, h('figcaption', {}, side === 'Left' ? 'Left (1 or ←)' : 'Right (2 or →)'));
}

function bar(pct: number, v: RatingView): HTMLElement {
  const fill = h('div', { class: 'fill' });
  // CSSOM, not a style attribute: the CSP forbids inline style attributes.
  fill.style.width = `${pct}%`;
  return h('div', { class: 'bar', role: 'progressbar', 'aria-label': 'Rated pairs', 'aria-valuemin': '0', 'aria-valuemax': String(v.target), 'aria-valuenow': String(v.rated) }, fill);
}

function header(v: RatingView): HTMLElement {
  const pct = Math.min(100, Math.round((v.rated / Math.max(1, v.target)) * 100));
  const consistency = v.consistency === null ? 'consistency: after a few repeated pairs' : `consistency ${Math.round(v.consistency * 100)}% (from ${v.repeats} repeated ${v.repeats === 1 ? 'pair' : 'pairs'})`;
  return h('header', { class: 'rating-header' },
    h('h1', {}, v.title),
    h('div', { class: 'progress-row' },
      bar(pct, v),
      h('span', { class: 'count', 'data-testid': 'rated-count' }, `${v.rated} / ${v.target} rated`),
      v.mode === 'compare' ? '' : h('span', { class: 'pill', title: 'How often you pick the same image when a pair comes back with its sides swapped' }, consistency),
      // while a blind comparison is rated its running win rate stays hidden: it would tell which side is which
      v.winRate && v.winRate.n > 0 && v.rated >= v.target ? h('span', { class: 'pill winrate' }, `win rate ${Math.round(v.winRate.rate * 100)}% (95% CI ${Math.round(v.winRate.low * 100)}–${Math.round(v.winRate.high * 100)}%, n=${v.winRate.n})`) : '',
    ),
    // a skip is no judgement, so it leaves the win rate alone; a tie is half a win
    v.mode === 'compare' ? h('p', { class: 'muted scoring', 'data-testid': 'scoring-rule' }, 'Skipped pairs are not counted in the win rate; a tie counts as half a win.') : '',
  );
}

function render(): void {
  if (!view) {
    top.replaceChildren(h('div', { class: 'center' }, h('vscode-progress-ring', { 'aria-label': 'Loading' }), h('p', {}, 'Loading…')));
    return;
  }
  const v = view;
  const item = current();
  if (item && item.id !== shownId) {
    shownId = item.id;
    shownAt = performance.now();
  }
  // Warm the image cache for the pairs after this one.
  for (const next of v.items.slice(0, 4)) for (const u of [next.leftUri, next.rightUri]) if (!preloaded.has(u)) { preloaded.add(u); new Image().src = u; }
  let body: HTMLElement;
  if (item) {
    body = h('main', { class: 'pair' },
      h('p', { class: 'prompt' }, h('span', { class: 'muted' }, 'Prompt: '), item.prompt),
      h('div', { class: zoom ? 'images zoom' : 'images' }, image(item.leftUri, 'Left', item.prompt), image(item.rightUri, 'Right', item.prompt)),
      h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Rating actions' },
        button('◀ Left is better', '1', 'Left is better', () => choose('left'), 'primary'),
        button('Tie', 'T', 'Tie: both equally good', () => choose('tie')),
        button('Skip', 'S', 'Skip this pair', () => choose('skip')),
        button('Right is better ▶', '2', 'Right is better', () => choose('right'), 'primary'),
        button('Undo', 'U', 'Undo the last rating', undo),
        button(zoom ? 'Unzoom' : 'Zoom', 'Z', zoom ? 'Show images at normal size' : 'Zoom the images', () => { zoom = !zoom; render(); }),
      ),
    );
  } else if (v.mode === 'compare') {
    body = h('main', { class: 'center' }, h('h2', {}, 'All pairs of this comparison are rated.'),
      v.winRate && v.winRate.n > 0 ? h('p', { class: 'result' }, `${winnerText(v.winRate.label)} won ${Math.round(v.winRate.rate * 100)}% of the time (95% CI ${Math.round(v.winRate.low * 100)}–${Math.round(v.winRate.high * 100)}%, n=${v.winRate.n}).`) : h('p', {}, 'Every pair was skipped.'),
      button('Undo', 'U', 'Undo the last rating', undo));
  } else if (v.generating > 0 || pending.size > 0) {
    body = h('main', { class: 'center' }, h('vscode-progress-ring', { 'aria-label': v.generating > 0 ? 'Generating pairs' : 'Saving' }), h('p', {}, v.generating > 0 ? `Generating the next pairs (${v.generating} on the way)…` : 'Saving your last answer…'));
  } else {
    body = h('main', { class: 'center' }, h('h2', {}, v.rated >= v.target ? `Target reached: ${v.rated} ratings.` : 'No pairs to rate right now.'), h('p', { class: 'muted' }, 'Train the reward model from the Experiments view, or keep rating later.'), button('Undo', 'U', 'Undo the last rating', undo));
  }
  const footer = h('footer', { class: 'muted keys' }, 'Keys: 1 or ← left · 2 or → right · T or = tie · S skip · U or Ctrl+Z undo · Z zoom', v.generating > 0 && item ? h('span', {}, ` · generating ${v.generating} more`) : '');
  replaceKeepingFocus(top, header(v), body);
  if (live.textContent !== status) live.textContent = status;
  bottom.replaceChildren(footer);
}

window.addEventListener('keydown', (e) => {
  // a held key rates (or undoes) once, not every pair that comes up while it is down
  if (e.altKey || e.metaKey || e.repeat) return;
  const k = e.key;
  if ((e.ctrlKey && k.toLowerCase() === 'z') || (!e.ctrlKey && (k === 'u' || k === 'U'))) return e.preventDefault(), undo();
  if (e.ctrlKey) return;
  const map: Record<string, Choice> = { '1': 'left', ArrowLeft: 'left', '2': 'right', ArrowRight: 'right', t: 'tie', T: 'tie', '=': 'tie', s: 'skip', S: 'skip' };
  if (map[k]) {
    e.preventDefault();
    return choose(map[k]);
  }
  if (k === 'z' || k === 'Z' || (k === 'Escape' && zoom)) {
    zoom = k === 'Escape' ? false : !zoom;
    render();
  }
});

host.onMessage((msg: PanelMessage<'rating'>) => {
  switch (msg.type) {
    case 'rating':
      if (undoing && view && msg.view.rated < view.rated) {
        undoing = false;
        status = `Undone ✓ (${msg.view.rated} rated)`;
      }
      view = msg.view;
      // Ids the host no longer lists were saved (or never existed); stop waiting for them.
      for (const id of pending) if (!view.items.some((i) => i.id === id)) pending.delete(id);
      return render();
    case 'saved':
      pending.delete(msg.itemId);
      // a save confirmed after the person pressed Undo: the undo's answer is the news
      if (!undoing) status = `Saved ✓ (${msg.rated} rated)`;
      if (view) view.rated = msg.rated;
      return render();
    case 'error':
      undoing = false;
      status = msg.message;
      return render();
    default: {
      const never: never = msg;
      return never;
    }
  }
});

render();
host.post({ type: 'ready' });

// Who "won" in the result line: against the base model, the fine-tuned model; else model B of the comparison
// ("Diffusion-DPO epoch 6, against DDPO epoch 20,").
function winnerText(label: string | undefined): string {
  const [b, a] = (label ?? '').split(' vs ');
  return a && a !== 'base model' ? `${b}, against ${a},` : 'The fine-tuned model';
}
