/**
 * Panels that come back after a window reload. The host keeps what each panel shows (its experiment folder, its
 * comparison) in workspace state under an opaque key; the webview keeps only that key (VS Code hands it back on
 * reload). A key the host never issued, or one whose experiment is gone, restores nothing, so no webview state
 * can point a panel at a folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { Services } from '../services';

/** What a rating panel rates. */
export interface RatingSource {
  mode: 'rate' | 'compare';
  experiment: string;
  experimentDir: string;
  /** Needed to generate pairs (mode 'rate'). */
  modelDir?: string;
  compareId?: string;
  target: number;
}

/** What a restorable panel shows. */
export type SavedPanel = { kind: 'rating'; src: RatingSource } | { kind: 'dashboard'; experimentDir: string };

const STATE_KEY = 'ddpoStudio.panels';
// Panels closed long ago are not told apart from open ones (a reload disposes nothing); the oldest are dropped.
const KEEP = 30;

type Store = Record<string, SavedPanel & { at: number }>;

function store(services: Services): Store {
  return { ...(services.context.workspaceState.get<Store>(STATE_KEY) ?? {}) };
}

/** Records `saved` and returns the key its webview keeps. */
export function rememberPanel(services: Services, saved: SavedPanel): string {
  const all = store(services);
  const same = Object.entries(all).find(([, v]) => identity(v) === identity(saved));
  const key = same?.[0] ?? randomBytes(9).toString('base64url');
  all[key] = { ...saved, at: Date.now() };
  const keep = Object.entries(all).sort((a, b) => b[1].at - a[1].at).slice(0, KEEP);
  void services.context.workspaceState.update(STATE_KEY, Object.fromEntries(keep));
  return key;
}

// one entry per experiment panel: reopening the same rating panel or dashboard reuses its key
function identity(p: SavedPanel): string {
  return p.kind === 'rating' ? `rating\u0000${p.src.experimentDir}\u0000${p.src.compareId ?? ''}` : `dashboard\u0000${p.experimentDir}`;
}

/** The saved panel for a webview's restored state, if the state is a key this host issued and the experiment still exists. */
export function lookupPanel(services: Services, state: unknown): SavedPanel | undefined {
  const key = state && typeof state === 'object' ? (state as { restoreKey?: unknown }).restoreKey : undefined;
  if (typeof key !== 'string') return undefined;
  const saved = store(services)[key];
  if (!saved) return undefined;
  const dir = saved.kind === 'rating' ? saved.src.experimentDir : saved.experimentDir;
  return fs.existsSync(path.join(dir, 'experiment.json')) ? saved : undefined;
}

/** Registers the serializers that reopen rating panels and dashboards after a reload. */
export function registerPanelRestore(services: Services, open: {
  rating: (panel: vscode.WebviewPanel, src: RatingSource) => void;
  dashboard: (panel: vscode.WebviewPanel, experimentDir: string) => void;
}): vscode.Disposable[] {
  const restore = (kind: SavedPanel['kind']): vscode.WebviewPanelSerializer => ({
    async deserializeWebviewPanel(panel, state) {
      const saved = lookupPanel(services, state);
      if (!saved || saved.kind !== kind) {
        services.output.appendLine(`[host] a ${kind} panel from before the reload was not restored: its experiment is gone or its state is unknown`);
        panel.dispose();
        return;
      }
      if (saved.kind === 'rating') open.rating(panel, saved.src);
      else open.dashboard(panel, saved.experimentDir);
    },
  });
  return [
    vscode.window.registerWebviewPanelSerializer('ddpoStudio.rating', restore('rating')),
    vscode.window.registerWebviewPanelSerializer('ddpoStudio.dashboard', restore('dashboard')),
  ];
}
