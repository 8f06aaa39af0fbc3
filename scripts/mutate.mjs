// Mutation check: breaks the product one line at a time, as a reviewer would, and reports whether the tests notice.
// Each mutation of scripts/mutations.json is applied to a copy of the tree (tracked and untracked files, the repo's
// node_modules and ../shared linked in), then the unit test files it names run there; a failing run is "caught", a
// passing one "missed". A mutation whose original line is no longer in its file is "stale" (fix the list), never
// caught. Before any mutation the named test files run once unmutated and must pass.
//
//   node scripts/mutate.mjs [--all] [--only id,id] [--e2e] [--keep] [--timeout SECONDS] [--list FILE]
//     --all      run the whole unit suite for every mutation instead of its own test files (slow)
//     --only     just these mutation ids
//     --e2e      also run the mutations that only the code-server end-to-end test can catch (minutes each)
//     --keep     leave the copy of the tree in place (its path is printed)
//     --timeout  limit per test run (default 900 s); a run that hangs counts as caught, as a CI timeout would
//     --list     another mutation list (default scripts/mutations.json)
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const E2E = 'e2e';

function parseArgs(argv) {
  const o = { all: false, e2e: false, keep: false, only: null, timeoutS: 900, list: path.join(root, 'scripts', 'mutations.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--all') o.all = true;
    else if (a === '--e2e') o.e2e = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--only') o.only = new Set((argv[++i] ?? '').split(',').filter(Boolean));
    else if (a === '--timeout') o.timeoutS = Number(argv[++i]);
    else if (a === '--list') o.list = path.resolve(argv[++i] ?? '');
    else throw new Error(`unknown flag ${a}; see the usage at the top of scripts/mutate.mjs`);
  }
  if (!(o.timeoutS > 0)) throw new Error('--timeout expects a number of seconds');
  return o;
}

/** The mutation list, checked: every entry names a file, one line's text, its replacement, why a user would notice and its tests. */
function readMutations(file) {
  const list = JSON.parse(fs.readFileSync(file, 'utf8'));
  const ids = new Set();
  for (const m of list) {
    for (const k of ['id', 'file', 'original', 'replacement', 'why']) {
      if (typeof m[k] !== 'string') throw new Error(`${file}: mutation ${m.id ?? '?'} has no string "${k}"`);
    }
    if (!Array.isArray(m.tests) || m.tests.length === 0) throw new Error(`${file}: mutation ${m.id} names no tests`);
    if (m.original.includes('\n') || m.replacement.includes('\n')) throw new Error(`${file}: mutation ${m.id} is not a single-line change`);
    if (ids.has(m.id)) throw new Error(`${file}: mutation id ${m.id} appears twice`);
    ids.add(m.id);
  }
  return list;
}

/** Copies the working tree (tracked and untracked, not ignored) to a temp folder; node_modules and ../shared are linked. */
function copyTree() {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-mutate-'));
  const dest = path.join(base, path.basename(root));
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of files) {
    const from = path.join(root, f);
    let st;
    try { st = fs.lstatSync(from); } catch { continue; } // deleted in the working tree
    if (!st.isFile()) continue;
    fs.mkdirSync(path.dirname(path.join(dest, f)), { recursive: true });
    fs.copyFileSync(from, path.join(dest, f));
    fs.chmodSync(path.join(dest, f), st.mode);
  }
  fs.symlinkSync(fs.realpathSync(path.join(root, 'node_modules')), path.join(dest, 'node_modules'), 'dir');
  // the e2e's cached Node 24 and code-server, so an e2e mutation does not install them again
  if (fs.existsSync(path.join(root, '.e2e'))) fs.symlinkSync(fs.realpathSync(path.join(root, '.e2e')), path.join(dest, '.e2e'), 'dir');
  const shared = path.join(root, '..', 'shared');
  if (fs.existsSync(shared)) fs.symlinkSync(fs.realpathSync(shared), path.join(base, 'shared'), 'dir');
  return { base, dest };
}

/** The one line of `text` the mutation targets: the line equal to `original`, else the one line containing it. */
function locate(text, original) {
  const lines = text.split('\n');
  const whole = lines.flatMap((l, i) => (l === original ? [i] : []));
  const hits = whole.length ? whole : lines.flatMap((l, i) => (l.includes(original) ? [i] : []));
  return { lines, hits };
}

/** Every unit test file, as scripts/test.mjs finds them. */
function allUnitTests(dir) {
  return fs.readdirSync(path.join(dir, 'test', 'unit'), { recursive: true }).filter((f) => f.endsWith('.test.ts')).map((f) => path.join('test', 'unit', f)).sort();
}

/** Runs the tests in `cwd`; resolves to {ok, failed: names of failing tests, seconds, timedOut}. */
function runTests(cwd, tests, pattern, timeoutS) {
  const argv = tests[0] === E2E ? ['--import', 'tsx', 'test/e2e/codeServer/run.ts'] : ['--import', 'tsx', '--test', '--test-reporter=tap', ...(pattern ? ['--test-name-pattern', pattern] : []), ...tests];
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: tests[0] === E2E ? process.env : { ...process.env, DDPO_SKIP_E2E: '1' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const failed = [...out.matchAll(/^\s*not ok \d+ - (.*)$/gm)].map((m) => m[1]).filter((n) => !/\.test\.ts$/.test(n));
      resolve({ ok: code === 0 && !timedOut, failed, seconds: (Date.now() - started) / 1000, timedOut, tail: out.slice(-3000) });
    });
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const list = readMutations(o.list).filter((m) => !o.only || o.only.has(m.id));
  if (o.only) for (const id of o.only) if (!list.some((m) => m.id === id)) throw new Error(`no mutation ${id} in ${o.list}`);
  const { base, dest } = copyTree();
  console.log(`copy of the tree: ${dest}`);
  const testsOf = (m) => (o.all && m.tests[0] !== E2E ? allUnitTests(dest) : m.tests);
  const runnable = list.filter((m) => o.e2e || m.tests[0] !== E2E);

  // The named tests must pass on the unmutated tree, or every mutation would look caught.
  const unitFiles = [...new Set(runnable.flatMap(testsOf).filter((t) => t !== E2E))];
  console.log(`baseline: ${unitFiles.length} test files on the unmutated tree`);
  const baseline = await runTests(dest, unitFiles, undefined, o.timeoutS);
  if (!baseline.ok) {
    console.log(baseline.tail);
    console.log(`FAILED: the tests fail without any mutation (${baseline.failed.join('; ') || 'see above'}); fix them first`);
    process.exit(1);
  }
  console.log(`baseline passed in ${baseline.seconds.toFixed(0)} s`);

  const results = [];
  for (const m of list) {
    const file = path.join(dest, m.file);
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    const { lines, hits } = locate(text, m.original);
    let r;
    if (!runnable.includes(m)) r = { status: 'not run', detail: 'only the e2e can catch it (pass --e2e)' };
    else if (!fs.existsSync(file)) r = { status: 'stale', detail: `${m.file} no longer exists` };
    else if (hits.length !== 1) r = { status: 'stale', detail: hits.length ? `the original text is on ${hits.length} lines of ${m.file}; make it unique` : `the original text is no longer in ${m.file}` };
    else {
      const i = hits[0];
      lines[i] = lines[i] === m.original ? m.replacement : lines[i].replace(m.original, m.replacement);
      fs.writeFileSync(file, lines.join('\n'));
      try {
        const t = await runTests(dest, testsOf(m), o.all ? undefined : m.pattern, o.timeoutS);
        r = t.ok ? { status: 'MISSED', detail: 'the tests still pass', seconds: t.seconds } : { status: 'caught', detail: t.timedOut ? `timed out after ${o.timeoutS} s` : t.failed.slice(0, 3).join('; ') || 'the test run failed', seconds: t.seconds };
      } finally {
        fs.writeFileSync(file, text);
      }
    }
    results.push({ ...m, ...r });
    console.log(`${r.status.padEnd(7)} ${m.id} (${m.file})${r.seconds !== undefined ? ` ${r.seconds.toFixed(0)} s` : ''}: ${r.detail}`);
  }

  const ran = results.filter((r) => r.status === 'caught' || r.status === 'MISSED');
  const caught = ran.filter((r) => r.status === 'caught').length;
  const stale = results.filter((r) => r.status === 'stale');
  const missed = results.filter((r) => r.status === 'MISSED');
  console.log(`\nscore: ${caught}/${ran.length} caught, ${missed.length} missed, ${stale.length} stale, ${results.length - ran.length - stale.length} not run; ${((Date.now() - started) / 1000).toFixed(0)} s`);
  for (const r of missed) console.log(`  MISSED ${r.id}: ${r.why}`);
  for (const r of stale) console.log(`  stale ${r.id}: ${r.detail}`);
  if (o.keep) console.log(`kept ${dest}`);
  else fs.rmSync(base, { recursive: true, force: true });
  process.exit(missed.length || stale.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e.message);
  process.exit(2);
});
