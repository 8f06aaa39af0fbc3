/** Tiny DOM helper: build elements without innerHTML (so no text is ever parsed as markup). */

/** Creates `<tag>` with attributes and children (strings become text nodes); custom elements give HTMLElement. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Record<string, string>, ...children: (Node | string)[]): HTMLElementTagNameMap[K];
export function h(tag: `vscode-${string}`, attrs?: Record<string, string>, ...children: (Node | string)[]): HTMLElement;
export function h(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c);
  return el;
}

// What finds an element again after a redraw: its test id, accessible name or id.
const identity = (e: Element) => e.getAttribute('data-testid') ?? e.getAttribute('aria-label') ?? (e.id || null);

/**
 * Replaces `root`'s children, keeping the person's place: the element that had focus (found again by its test id,
 * accessible name or id) gets it back, and a text field keeps what was typed in it. Panels redraw whole on every
 * update (a run's progress several times a second), which would otherwise drop keyboard focus and half-typed text.
 */
export function replaceKeepingFocus(root: HTMLElement, ...children: (Node | string)[]): void {
  const active = document.activeElement;
  const key = active && active !== root && root.contains(active) ? identity(active) : null;
  const typed = active instanceof HTMLInputElement ? { value: active.value, start: active.selectionStart, end: active.selectionEnd } : undefined;
  root.replaceChildren(...children);
  if (key === null) return;
  const again = [...root.querySelectorAll<HTMLElement>('[data-testid], [aria-label], [id]')].find((e) => identity(e) === key);
  if (!again) return;
  if (typed && again instanceof HTMLInputElement) {
    again.value = typed.value;
    again.setSelectionRange(typed.start, typed.end);
  }
  again.focus();
}
