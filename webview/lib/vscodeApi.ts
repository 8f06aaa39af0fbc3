/** Typed bridge to the extension host: post WebviewToHost, receive HostToWebview. */
import type { HostToWebview, PanelMessage, WebviewToHost } from '../../src/protocol';

interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const api = acquireVsCodeApi();

/** Sends a message to the extension host. */
export function post(msg: WebviewToHost): void {
  api.postMessage(msg);
}

/** Calls `cb` for each message from the extension host; a restore key is kept as the webview's state instead. */
export function onHostMessage(cb: (msg: PanelMessage) => void): void {
  window.addEventListener('message', (e: MessageEvent) => {
    const msg = e.data as HostToWebview;
    if (msg.type === 'restoreKey') api.setState({ restoreKey: msg.key });
    else cb(msg);
  });
}
