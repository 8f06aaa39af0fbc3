/**
 * The rating panel: a webview over a `RatingSession` (the queue, the trips to the worker), which shows pairs side
 * by side and also rates blind comparisons. The webview may read images from the log's image folder alone.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { resolveInside } from '../../core/fsutil';
import { SAMPLES_DIR } from '../../core/studio/pairs';
import { ratingsDir } from '../../core/studio/ratingLog';
import type { HostToRating } from '../../protocol';
import type { Services } from '../services';
import { openWebviewPanel, webviewHtml } from './webviewHtml';
import { executionProviderSetting } from '../settings';
import { rememberPanel } from './restore';
import { RatingSession, type RatingSource } from './ratingSession';

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

/** One open rating panel. */
export class RatingPanel {
  readonly panel: vscode.WebviewPanel;

  constructor(services: Services, src: RatingSource, onDispose: () => void, restored?: vscode.WebviewPanel) {
    const { extensionUri } = services.context;
    const root = ratingsDir(src.experimentDir, src.compareId);
    const title = src.mode === 'compare' ? `Blind comparison: ${src.experiment}` : `Rate: ${src.experiment}`;
    // Images are read straight from the experiment's image folder, and from nowhere else on disk (in a
    // comparison not even its manifest, which says which image is the fine-tuned one).
    const images = src.compareId ? path.join(root, 'images') : path.join(src.experimentDir, SAMPLES_DIR);
    const panel = openWebviewPanel(extensionUri, 'ddpoStudio.rating', title, images, restored, { retainContextWhenHidden: true });
    this.panel = panel;
    const session = new RatingSession(src, {
      worker: services.worker,
      post: (msg: HostToRating) => void panel.webview.postMessage(msg),
      imageUri: (rel) => panel.webview.asWebviewUri(vscode.Uri.file(resolveInside(root, rel))).toString(),
      log: (line) => services.output.appendLine(line),
      generationFailed: (message) => void vscode.window.showErrorMessage(`DDPO Studio could not generate pairs for ${src.experiment}: ${message}`),
      executionProvider: executionProviderSetting,
      restoreKey: rememberPanel(services, { kind: 'rating', src }),
    });
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'rating', title);
    panel.webview.onDidReceiveMessage(session.receive);
    panel.onDidDispose(() => {
      session.dispose();
      onDispose();
    });
  }
}
