/** HTML shell for DDPO Studio webviews: strict CSP with a nonce, one script bundle, shared CSS. */
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import type { PanelKind } from '../../protocol';

/** Webview options that allow only our dist/ and media/ folders. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')], retainContextWhenHidden: false };
}

/**
 * The webview panel of `viewType`: `restored` (the one VS Code brought back after a window reload) retitled and given
 * its options again, else a new one beside the editor. It may read dist/, media/ and `extraRoot` alone (its images).
 */
export function openWebviewPanel(extensionUri: vscode.Uri, viewType: string, title: string, extraRoot: string | string[], restored?: vscode.WebviewPanel,
  createOptions: vscode.WebviewPanelOptions = {}): vscode.WebviewPanel {
  const opts = webviewOptions(extensionUri);
  const options = { ...opts, localResourceRoots: [...(opts.localResourceRoots ?? []), ...[extraRoot].flat().map((r) => vscode.Uri.file(r))] };
  const panel = restored ?? vscode.window.createWebviewPanel(viewType, title, vscode.ViewColumn.Active, { ...options, ...createOptions });
  if (restored) {
    panel.title = title;
    panel.webview.options = options;
  }
  panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'ddpo.svg');
  return panel;
}

/** The page for panel `bundle`'s script, `dist/webview/<bundle>.js`. */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, bundle: PanelKind, title: string): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${bundle}.js`));
  const css = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'webview.css'));
  const csp = [`default-src 'none'`, `img-src ${webview.cspSource} data:`, `style-src ${webview.cspSource}`, `script-src 'nonce-${nonce}'`].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${css}">
<title>${escapeHtml(title)}</title>
</head>
<body>
<div id="app"></div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
