/** Starts code-server on a free loopback port with its own user-data, extensions and workspace folders. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { CodeServerInstall } from './setup';

/** A running code-server. */
export interface RunningCodeServer {
  url: string;
  stop(): void;
}

/** Installs `vsix` into `extensionsDir` with code-server's own installer, as a user would. */
export function installVsix(cs: CodeServerInstall, vsix: string, extensionsDir: string, userDataDir: string, logFile: string): void {
  const out = execFileSync(cs.node, [cs.entry, '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir, '--install-extension', vsix], { env: envFor(cs), encoding: 'utf8' });
  fs.appendFileSync(logFile, out);
  if (!/successfully installed/.test(out)) throw new Error(`code-server did not install ${vsix}: ${out}`);
}

/** Starts code-server for `workspace` with `env` added to its environment (the extension host and worker inherit it); resolves once its health endpoint answers. */
export async function startCodeServer(cs: CodeServerInstall, dirs: { userDataDir: string; extensionsDir: string; workspace: string }, logFile: string, env: NodeJS.ProcessEnv = {}): Promise<RunningCodeServer> {
  const settings = path.join(dirs.userDataDir, 'User', 'settings.json');
  fs.mkdirSync(path.dirname(settings), { recursive: true });
  fs.writeFileSync(settings, JSON.stringify({ 'security.workspace.trust.enabled': false, 'workbench.startupEditor': 'none', 'workbench.tips.enabled': false, 'telemetry.telemetryLevel': 'off', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false, 'chat.disableAIFeatures': true, 'workbench.secondarySideBar.defaultVisibility': 'hidden' }, null, 2));
  const port = await freePort();
  const log = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawn(cs.node, [cs.entry, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', '--user-data-dir', dirs.userDataDir, '--extensions-dir', dirs.extensionsDir, dirs.workspace], { env: { ...envFor(cs), ...env }, stdio: ['ignore', log, log], detached: true });
  const stop = () => {
    try {
      // code-server forks its own children; the process group takes them all down.
      if (child.pid) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited with code ${child.exitCode}; see ${logFile}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      stop();
      throw new Error(`code-server did not answer on ${url} within 60 s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, stop };
}

function envFor(cs: CodeServerInstall): NodeJS.ProcessEnv {
  // The extension host forks the worker with process.execPath, i.e. this Node 24.
  return { ...process.env, PATH: `${cs.binDir}${path.delimiter}${process.env.PATH}` };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
