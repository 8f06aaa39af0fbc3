// `npm test`: type-check (host + webview), build, unit tests (node's test runner via tsx), then the
// code-server end-to-end test. Flags: --unit-only, --e2e-only. Env: DDPO_SKIP_E2E=1 skips the e2e.
// The summary line names every skipped test and why. Under CI=true a skip fails the run unless its reason starts
// with "needs a GPU" (test/unit/fixtures.ts: CI must have every other input).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
const totals = { passed: 0, failed: 0, skipped: 0 };
/** Every skipped test: its name and the reason it gave. */
const skips = [];
const inCi = process.env.CI === 'true';
// The one kind of skip CI accepts: what a CI machine cannot have.
const CI_ALLOWED_SKIP = /^needs a GPU\b/;
const started = Date.now();

/** Runs a command, echoing its output; resolves to {code, output}. */
function run(file, argv, { env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(file, argv, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (stream) => (d) => {
      output += d;
      stream.write(d);
    };
    child.stdout.on('data', onData(process.stdout));
    child.stderr.on('data', onData(process.stderr));
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

function section(title) {
  console.log(`\n=== ${title} (${((Date.now() - started) / 1000).toFixed(0)} s) ===`);
}

/** All test/unit/**\/*.test.ts files, sorted (node 20's --test has no reliable glob support). */
function unitTestFiles() {
  const dir = path.join(root, 'test', 'unit');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true })
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.join('test', 'unit', f))
    .sort();
}

/** The skipped and todo tests of a TAP stream (nested subtests too), with the reason each gave. */
function skippedTests(tap) {
  return [...tap.matchAll(/^\s*ok \d+ - (.*?) # (SKIP|TODO)(?: (.*))?$/gm)].map((m) => ({ name: m[1].replace(/\\#/g, '#'), reason: m[3] ?? (m[2] === 'TODO' ? 'todo' : 'no reason given') }));
}

function count(output, label) {
  const m = [...output.matchAll(new RegExp(`^# ${label} (\\d+)$`, 'gm'))].pop();
  return m ? Number(m[1]) : 0;
}

async function main() {
  let failedStep = '';
  if (!args.has('--e2e-only')) {
    section('type-check: tsconfig.json (extension host, worker, core, cli, tests)');
    if ((await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--noEmit'])).code !== 0) failedStep ||= 'type-check (tsconfig.json)';
    section('type-check: webview/tsconfig.json (DOM)');
    if ((await run(process.execPath, [tsc, '-p', 'webview/tsconfig.json', '--noEmit'])).code !== 0) failedStep ||= 'type-check (webview/tsconfig.json)';
    section('build');
    if ((await run(process.execPath, ['scripts/build.mjs'])).code !== 0) failedStep ||= 'build';
    const files = unitTestFiles();
    section(`unit tests: ${files.length} files`);
    const unit = await run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', ...files]);
    totals.passed += count(unit.output, 'pass');
    totals.failed += count(unit.output, 'fail') + count(unit.output, 'cancelled');
    totals.skipped += count(unit.output, 'skipped') + count(unit.output, 'todo');
    skips.push(...skippedTests(unit.output));
    if (unit.code !== 0) failedStep ||= 'unit tests';
  }
  if (!args.has('--unit-only')) {
    section('end-to-end: VS Code (code-server) in chromium');
    if (process.env.DDPO_SKIP_E2E === '1') {
      console.log('e2e: SKIPPED because DDPO_SKIP_E2E=1 (unset it to run the code-server end-to-end test)');
      totals.skipped += 1;
      skips.push({ name: 'end-to-end test', reason: 'DDPO_SKIP_E2E=1' });
    } else {
      const e2e = await run(process.execPath, ['--import', 'tsx', 'test/e2e/codeServer/run.ts']);
      const m = e2e.output.match(/^e2e: (\d+) passed, (\d+) failed/m);
      totals.passed += m ? Number(m[1]) : 0;
      totals.failed += m ? Number(m[2]) : 1;
      if (e2e.code !== 0) failedStep ||= 'end-to-end test';
    }
  }
  section('summary');
  const required = inCi ? skips.filter((s) => !CI_ALLOWED_SKIP.test(s.reason)) : [];
  if (required.length) failedStep ||= `${required.length} required test${required.length > 1 ? 's' : ''} skipped under CI=true (only "needs a GPU" skips are allowed there)`;
  if (failedStep) console.log(`FAILED: ${failedStep} (see above)`);
  // one group per reason: "name; name (reason) | name (other reason)"
  const byReason = new Map();
  for (const s of skips) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s]);
  const named = [...byReason].map(([reason, group]) => `${group.map((s) => s.name).join('; ')} (${reason})`).join(' | ');
  console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped${named ? `: ${named}` : ''}`);
  process.exit(failedStep ? 1 : 0);
}

main();
