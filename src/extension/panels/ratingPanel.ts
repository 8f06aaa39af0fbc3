/**
 * The rating panel: shows pairs side by side, sends each answer to the worker (which fsyncs it before
 * replying) and keeps the next pairs generated ahead. Also rates blind comparisons. The webview only ever
 * names pairs by id: image paths stay here, so no message can point outside the experiment folder.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { raterConsistency } from '../../core/reward/consistency';
import { readRatings } from '../../core/reward/store';
import { compareDir, compareQueue, compareResult, listComparisons } from '../../core/studio/compare';
import { buildQueue, listPairs, SAMPLES_DIR, type QueueItem } from '../../core/studio/pairs';
import { CHOICES, parseWebviewMessage, type HostToWebview, type RatingView, type WebviewToHost } from '../../protocol';
import { assertNever } from '../../protocol';
import type { Services } from '../services';
import { openWebviewPanel, webviewHtml } from './webviewHtml';
import { executionProviderSetting } from '../settings';
import { rememberPanel } from './restore';

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

/** Pairs kept ready ahead of the one on screen, and how many are generated per worker job. */
const PREFETCH = 4;
const SHOWN = 5;

const open = new Map<string, RatingPanel>();

/** Opens (or reveals) the rating panel for `src`; `restored` is the panel VS Code brought back after a reload. */
export function openRatingPanel(services: Services, src: RatingSource, restored?: vscode.WebviewPanel): RatingPanel {
  const key = `${src.experimentDir}#${src.compareId ?? ''}`;
  const existing = open.get(key);
  if (existing) {
    restored?.dispose();
    existing.panel.reveal();
    return existing;
  }
  const panel = new RatingPanel(services, src, () => open.delete(key), restored);
  open.set(key, panel);
  return panel;
}

/** One open rating panel and its queue. */
export class RatingPanel {
  readonly panel: vscode.WebviewPanel;
  private items: QueueItem[] = [];
  private readonly inFlight = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private generating = 0;
  private generation: AbortController | undefined;
  private generationFailed = false;
  private front: string | undefined;
  private readonly root: string;
  private readonly restoreKey: string;

  constructor(private readonly services: Services, private readonly src: RatingSource, onDispose: () => void, restored?: vscode.WebviewPanel) {
    const { extensionUri } = services.context;
    this.root = src.compareId ? compareDir(src.experimentDir, src.compareId) : src.experimentDir;
    const title = src.mode === 'compare' ? `Blind comparison: ${src.experiment}` : `Rate: ${src.experiment}`;
    // Images are read straight from the experiment's image folder, and from nowhere else on disk (in a
    // comparison not even its manifest, which says which image is the fine-tuned one).
    const images = src.compareId ? path.join(this.root, 'images') : path.join(src.experimentDir, SAMPLES_DIR);
    this.panel = openWebviewPanel(extensionUri, 'ddpoStudio.rating', title, images, restored, { retainContextWhenHidden: true });
    this.restoreKey = rememberPanel(services, { kind: 'rating', src });
    this.panel.webview.html = webviewHtml(this.panel.webview, extensionUri, 'rating', title);
    this.panel.webview.onDidReceiveMessage((raw: unknown) => this.receive(raw));
    this.panel.onDidDispose(() => {
      this.generation?.abort();
      onDispose();
    });
  }

  private receive(raw: unknown): void {
    let msg: WebviewToHost;
    try {
      msg = parseWebviewMessage(raw);
    } catch (e) {
      this.services.output.appendLine(`[host] rejected a rating panel message: ${(e as Error).message}`);
      return;
    }
    switch (msg.type) {
      case 'ready':
        this.post({ type: 'restoreKey', key: this.restoreKey });
        this.reload();
        this.post({ type: 'rating', view: this.view() });
        return this.prefetch();
      case 'rate':
        return this.rate(msg.itemId, msg.choice, msg.elapsedMs);
      case 'undo':
        return this.undo();
      case 'openExperimentFile':
      case 'addPrompt':
      case 'stopRun':
      case 'resumeRun':
        this.services.output.appendLine(`[host] the rating panel does not handle "${msg.type}"; ignored`);
        return;
      default:
        assertNever(msg);
    }
  }

  private rate(itemId: string, choice: string, elapsedMs: number): void {
    const item = this.items.find((i) => i.id === itemId);
    if (!item || this.inFlight.has(itemId) || !(CHOICES as readonly string[]).includes(choice)) {
      this.services.output.appendLine(`[host] ignored a rating for unknown or already rated pair ${itemId} (${choice})`);
      return;
    }
    this.inFlight.add(itemId);
    if (this.front === itemId) this.front = undefined;
    this.enqueue(async () => {
      try {
        const r = await this.services.worker.request('rate', {
          experimentDir: this.src.experimentDir, compareId: this.src.compareId, pairId: item.pairId, prompt: item.prompt, left: item.left, right: item.right,
          choice: choice as (typeof CHOICES)[number], sideOrder: item.sideOrder, repeatOf: item.repeatOf, elapsedMs,
        });
        this.post({ type: 'saved', itemId, rated: r.rated });
      } finally {
        this.inFlight.delete(itemId);
      }
    });
  }

  private undo(): void {
    this.enqueue(async () => {
      const last = readRatings(this.root).ratings.at(-1);
      if (!last) return;
      await this.services.worker.request('undo', { experimentDir: this.src.experimentDir, compareId: this.src.compareId, ratingId: last.id });
      this.front = last.repeatOf ? `${last.pairId}~${last.repeatOf}` : last.pairId;
    });
  }

  // Ratings and undos go to the worker one at a time, in the order the person gave them.
  private enqueue(op: () => Promise<void>): void {
    this.chain = this.chain.then(op).catch((e: Error) => {
      this.post({ type: 'error', message: `Not saved: ${e.message}` });
    }).then(() => {
      this.reload();
      this.post({ type: 'rating', view: this.view() });
      this.prefetch();
      void this.services.tree.refresh();
    });
  }

  private reload(): void {
    if (this.src.mode === 'compare') {
      const m = listComparisons(this.src.experimentDir).find((c) => c.id === this.src.compareId);
      this.items = m ? compareQueue(this.src.experimentDir, m) : [];
    } else {
      this.items = buildQueue(listPairs(this.src.experimentDir), readRatings(this.src.experimentDir).ratings);
    }
    const f = this.items.findIndex((i) => i.id === this.front);
    if (f > 0) this.items.unshift(...this.items.splice(f, 1));
  }

  private view(): RatingView {
    const log = readRatings(this.root);
    const c = raterConsistency(log.ratings);
    const uri = (rel: string) => this.panel.webview.asWebviewUri(vscode.Uri.file(path.join(this.root, rel))).toString();
    const view: RatingView = {
      title: this.src.mode === 'compare' ? `Blind comparison · ${this.src.experiment}` : this.src.experiment,
      mode: this.src.mode,
      items: this.items.filter((i) => !this.inFlight.has(i.id)).slice(0, SHOWN).map((i) => ({ id: i.id, prompt: i.prompt, leftUri: uri(i.left), rightUri: uri(i.right) })),
      rated: log.ratings.length,
      target: this.src.target,
      consistency: c.repeats > 0 && Number.isFinite(c.estimatedConsistency) ? c.estimatedConsistency : null,
      repeats: c.repeats,
      generating: this.generating,
      canUndo: log.ratings.length > 0,
    };
    if (this.src.mode === 'compare') {
      const m = listComparisons(this.src.experimentDir).find((x) => x.id === this.src.compareId);
      if (m) view.winRate = compareResult(this.src.experimentDir, m).winRate;
    }
    return view;
  }

  // Keeps PREFETCH unrated pairs ready, so the person never waits for generation.
  private prefetch(): void {
    if (this.src.mode !== 'rate' || this.generation || this.generationFailed || !this.src.modelDir) return;
    const ready = this.items.filter((i) => !i.repeatOf && !this.inFlight.has(i.id)).length;
    const rated = readRatings(this.src.experimentDir).ratings.length;
    if (ready >= PREFETCH || rated + ready >= this.src.target + PREFETCH) return;
    const count = PREFETCH;
    const ctl = new AbortController();
    this.generation = ctl;
    this.generating = count;
    this.post({ type: 'rating', view: this.view() });
    this.services.worker
      .request('generatePairs', { experimentDir: this.src.experimentDir, modelDir: this.src.modelDir, count, executionProvider: executionProviderSetting() }, {
        signal: ctl.signal,
        onProgress: (p) => {
          if (!p.pair) return;
          this.generating = Math.max(0, this.generating - 1);
          this.reload();
          this.post({ type: 'rating', view: this.view() });
        },
      })
      .then(
        () => undefined,
        (e: Error & { code?: string }) => {
          if (e.code === 'cancelled') return;
          this.generationFailed = true;
          this.post({ type: 'error', message: `Could not generate pairs: ${e.message}` });
          void vscode.window.showErrorMessage(`DDPO Studio could not generate pairs for ${this.src.experiment}: ${e.message}`);
        },
      )
      .finally(() => {
        this.generation = undefined;
        this.generating = 0;
        this.reload();
        this.post({ type: 'rating', view: this.view() });
        if (!ctl.signal.aborted) this.prefetch();
      });
  }

  private post(msg: HostToWebview): void {
    void this.panel.webview.postMessage(msg);
  }
}
