/**
 * A stand-in for the parts of the `vscode` module the panels use, so a panel runs in plain Node: webviews record
 * what the host posts to them, and `send` delivers a message as the webview's script would. `installFakeVscode`
 * makes `require('vscode')` load this module; import the panels after calling it.
 */
import Module from 'node:module';
import * as path from 'node:path';

type Listener<T> = (e: T) => unknown;

/** A disposable event list: `on` subscribes, `fire` delivers to every subscriber. */
class Emitter<T> {
  private listeners: Listener<T>[] = [];
  readonly on = (cb: Listener<T>) => {
    this.listeners.push(cb);
    return { dispose: () => void (this.listeners = this.listeners.filter((l) => l !== cb)) };
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
}

/** `vscode.Uri` for file paths. */
export class Uri {
  readonly scheme = 'file';
  private constructor(readonly fsPath: string) {}
  static file(p: string): Uri { return new Uri(path.resolve(p)); }
  static joinPath(base: Uri, ...parts: string[]): Uri { return new Uri(path.join(base.fsPath, ...parts)); }
  toString(): string { return `file://${this.fsPath}`; }
}

/** A webview that records the host's posts; `send` is a message from its script. */
export class FakeWebview {
  readonly posted: unknown[] = [];
  readonly cspSource = 'fake-webview-csp';
  html = '';
  options: unknown = {};
  private readonly received = new Emitter<unknown>();
  readonly onDidReceiveMessage = this.received.on;
  asWebviewUri(uri: Uri): string { return `webview://${uri.fsPath}`; }
  postMessage(msg: unknown): Promise<boolean> {
    this.posted.push(msg);
    return Promise.resolve(true);
  }
  /** Delivers `raw` to the host as if the webview's script had posted it. */
  send(raw: unknown): void {
    this.received.fire(raw);
  }
}

/** A webview panel; `dispose` closes it. */
export class FakeWebviewPanel {
  readonly webview = new FakeWebview();
  iconPath: unknown;
  revealed = 0;
  private readonly disposed = new Emitter<void>();
  readonly onDidDispose = this.disposed.on;
  constructor(readonly viewType: string, public title: string, readonly options: unknown) {}
  reveal(): void { this.revealed++; }
  dispose(): void { this.disposed.fire(); }
}

/** Every panel created, oldest first. */
export const created: FakeWebviewPanel[] = [];

const dismissed = () => Promise.resolve(undefined);

/** Warnings shown (modal or not), and the button each next one is answered with (dismissed when none is queued). */
export const warnings = { shown: [] as string[], answers: [] as string[] };
/** Error messages shown, and the button each next one is answered with (dismissed when none is queued). */
export const errors = { shown: [] as string[], answers: [] as string[] };
/** Information messages shown, and the button each next one is answered with (dismissed when none is queued). */
export const infos = { shown: [] as string[], answers: [] as string[] };

/** `vscode.EventEmitter`. */
export class EventEmitter<T> {
  private readonly emitter = new Emitter<T>();
  readonly event = this.emitter.on;
  fire(e: T): void { this.emitter.fire(e); }
  dispose(): void {}
}

/** A status bar item; `visible` says whether it is shown. */
export class FakeStatusBarItem {
  name = '';
  text = '';
  tooltip: unknown;
  command: unknown;
  accessibilityInformation: unknown;
  visible = false;
  show(): void { this.visible = true; }
  hide(): void { this.visible = false; }
  dispose(): void { this.visible = false; }
}

/** Every status bar item created, oldest first. */
export const statusBars: FakeStatusBarItem[] = [];

/** `vscode.StatusBarAlignment` and `vscode.ProgressLocation`. */
export const StatusBarAlignment = { Left: 1, Right: 2 };
export const ProgressLocation = { SourceControl: 1, Window: 10, Notification: 15 };

/** `vscode.ViewColumn`. */
export const ViewColumn = { Active: -1, Beside: -2, One: 1 };

/** `vscode.window`: panels and status bar items are recorded; messages are answered from their queues, pickers dismissed. */
export const window = {
  createWebviewPanel(viewType: string, title: string, _column: number, options: unknown): FakeWebviewPanel {
    const p = new FakeWebviewPanel(viewType, title, options);
    created.push(p);
    return p;
  },
  registerWebviewPanelSerializer: () => ({ dispose: () => undefined }),
  showInformationMessage: (message: string) => {
    infos.shown.push(message);
    return Promise.resolve(infos.answers.shift());
  },
  showWarningMessage: (message: string) => {
    warnings.shown.push(message);
    return Promise.resolve(warnings.answers.shift());
  },
  showErrorMessage: (message: string) => {
    errors.shown.push(message);
    return Promise.resolve(errors.answers.shift());
  },
  createStatusBarItem(): FakeStatusBarItem {
    const item = new FakeStatusBarItem();
    statusBars.push(item);
    return item;
  },
  /** Runs the task at once; its progress reports are dropped and its Cancel is never pressed. */
  withProgress<R>(_options: unknown, task: (progress: { report(p: unknown): void }, token: { onCancellationRequested(cb: () => void): void }) => Promise<R>): Promise<R> {
    return task({ report: () => undefined }, { onCancellationRequested: () => undefined });
  },
  showTextDocument: dismissed,
  showQuickPick: dismissed,
};

/** `vscode.commands`: commands run are recorded in `executed` (id and arguments), none of them does anything. */
export const commands = {
  executed: [] as { id: string; args: unknown[] }[],
  executeCommand(id: string, ...args: unknown[]): Promise<undefined> {
    commands.executed.push({ id, args });
    return Promise.resolve(undefined);
  },
};

/** `vscode.workspace`: set `workspaceFolders` to open a folder; every setting has its default. */
export const workspace = {
  workspaceFolders: undefined as { uri: Uri }[] | undefined,
  getConfiguration: () => ({ get: <T>(_key: string, fallback: T) => fallback }),
};

/** Makes `require('vscode')` (and `import … from 'vscode'`) load this module. */
export function installFakeVscode(): void {
  const m = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolve = m._resolveFilename;
  m._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    return request === 'vscode' ? __filename : resolve.call(this, request, ...rest);
  };
}
