/** Typed bridge to the extension host: post WebviewToHost, receive HostToWebview. */
import type { HostToWebview, WebviewToHost } from '../../src/protocol';

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

/** Calls `cb` for each message from the extension host. */
export function onHostMessage(cb: (msg: HostToWebview) => void): void {
  window.addEventListener('message', (e: MessageEvent) => cb(e.data as HostToWebview));
}
