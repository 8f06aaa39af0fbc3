/** The reward backbone this worker opened last, for Worker Status. */
import type { Backbone } from '../core/reward/backbone';

let last: { label: string; provider?: string; at: number } | undefined;

/** Remembers a backbone a job opened (pass as `onOpened`). */
export function noteBackboneOpened(b: Backbone): void {
  last = { label: b.label ?? b.id, provider: b.provider, at: Date.now() };
}

/** "Xenova/clip-vit-large-patch14 (image + text) on cuda, 3 min ago", or undefined before any job opened one. */
export function lastBackboneOpened(now = Date.now()): string | undefined {
  if (!last) return undefined;
  const min = Math.round((now - last.at) / 60000);
  return `${last.label}${last.provider ? ` on ${last.provider}` : ''}, ${min < 1 ? 'just now' : `${min} min ago`}`;
}
