/** Typed bridge to the extension host: each panel posts its own messages and receives its own. */
import type { HostToPanel, PanelKind, PanelMessage, PanelToHost, RestoreKeyMessage } from '../../src/protocol';

interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const api = acquireVsCodeApi();

/** Panel P's side of the bridge. */
export interface HostBridge<P extends PanelKind> {
  /** Sends a message to the extension host. */
  post(msg: PanelToHost<P>): void;
  /** Calls `cb` for each message from the extension host; a restore key is kept as the webview's state instead. */
  onMessage(cb: (msg: PanelMessage<P>) => void): void;
}

/** The bridge of panel P (call once per webview). */
export function hostBridge<P extends PanelKind>(): HostBridge<P> {
  return {
    post: (msg) => api.postMessage(msg),
    onMessage: (cb) => window.addEventListener('message', (e: MessageEvent) => {
      const msg = e.data as HostToPanel<P> | RestoreKeyMessage;
      if (msg.type === 'restoreKey') api.setState({ restoreKey: msg.key });
      else cb(msg as PanelMessage<P>);
    }),
  };
}
