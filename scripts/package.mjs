// Builds a production bundle and packages ddpo-studio-<target>-<version>.vsix (repo root) with vsce.
// The VSIX carries onnxruntime-node's linux-x64 binaries (see .vscodeignore), so it targets linux-x64.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const target = 'linux-x64';
const out = path.join(root, `${pkg.name}-${target}-${pkg.version}.vsix`);

const run = (file, args) => execFileSync(file, args, { cwd: root, stdio: 'inherit' });
run(process.execPath, [path.join(root, 'scripts/build.mjs'), '--production']);
if (!fs.existsSync(path.join(root, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node'))) {
  console.error('package: node_modules/onnxruntime-node has no linux-x64 binaries; run `npm ci` first.');
  process.exit(1);
}
// vsce lists production dependencies with `npm ls`; .vscodeignore keeps only the runtime files of onnxruntime.
// package.json names no repository, so vsce cannot turn the README's links into docs/ into absolute URLs: keep them relative.
run(process.execPath, [
  path.join(root, 'node_modules/@vscode/vsce/vsce'),
  'package', '--target', target, '--out', out, '--allow-missing-repository', '--skip-license', '--allow-star-activation', '--no-rewrite-relative-links',
]);
console.log(`package: wrote ${path.relative(root, out)} (${(fs.statSync(out).size / 1e6).toFixed(1)} MB)`);
