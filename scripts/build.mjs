// Bundles the extension, worker, CLI (node) and webviews (browser) with esbuild into dist/.
// Usage: node scripts/build.mjs [--production] [--watch] [--electron-tests]
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const production = args.has('--production');

const node = {
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
  // onnxruntime-node is native and ships its own binaries: it is loaded from node_modules at run time.
  external: ['vscode', 'onnxruntime-node', 'onnxruntime-common'],
};

const webviews = fs.readdirSync(path.join(root, 'webview'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(root, 'webview', d.name, 'main.ts')))
  .map((d) => d.name);

/** @type {esbuild.BuildOptions[]} */
const builds = [
  { ...node, entryPoints: [path.join(root, 'src/extension/extension.ts')], outfile: path.join(root, 'dist/extension.js') },
  { ...node, entryPoints: [path.join(root, 'src/worker/main.ts')], outfile: path.join(root, 'dist/worker.js') },
  { ...node, entryPoints: [path.join(root, 'src/cli/main.ts')], outfile: path.join(root, 'dist/cli.js'), banner: { js: '#!/usr/bin/env node' } },
  {
    platform: 'browser', format: 'iife', target: 'es2022', bundle: true, logLevel: 'warning',
    sourcemap: production ? false : 'linked', minify: production,
    entryPoints: Object.fromEntries(webviews.map((w) => [w, path.join(root, 'webview', w, 'main.ts')])),
    outdir: path.join(root, 'dist/webview'),
  },
];
if (args.has('--electron-tests')) {
  builds.push({ ...node, entryPoints: [path.join(root, 'test/e2e/electron/suite/index.ts')], outfile: path.join(root, 'dist-test/electron/suite/index.js') });
}

const started = Date.now();
if (args.has('--watch')) {
  for (const b of builds) await (await esbuild.context(b)).watch();
  console.log('esbuild: watching for changes…');
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  fs.chmodSync(path.join(root, 'dist/cli.js'), 0o755);
  console.log(`esbuild: built extension, worker, cli and ${webviews.length} webview(s) in ${Date.now() - started} ms${production ? ' (production)' : ''}`);
}
