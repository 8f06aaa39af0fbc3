// Real `ddpo` processes on one experiment: two started together, a signal mid-training, a write failure while
// creating an experiment. The CLI is bundled first the way scripts/build.mjs bundles dist/cli.js.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { listCheckpoints } from '../../../src/core/ddpo/checkpoint';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { readMetrics } from '../../../src/core/ddpo/metrics';
import { EMBEDDED_MODEL_ID } from '../../../src/core/experiment/modelDir';
import { RUN_LOCK_FILE } from '../../../src/core/experiment/runLock';
import { ExperimentStore } from '../../../src/core/experiment/store';
import { readRunState } from '../../../src/core/studio/runState';

const repo = path.resolve(__dirname, '../../..');
const MODEL = path.join(repo, 'media/tiny-model');
const noModel = fs.existsSync(path.join(MODEL, 'unet', 'model.onnx')) ? false : `the embedded model is not built (${MODEL}/unet/model.onnx missing)`;
// Next to the repo's node_modules so the bundle finds onnxruntime-node the way dist/cli.js does.
const cli = path.join(repo, 'dist-test', 'unit', 'cli.js');

before(async () => {
  await build({ entryPoints: [path.join(repo, 'src/cli/main.ts')], outfile: cli, bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['onnxruntime-node', 'onnxruntime-common'], logLevel: 'error' });
});

interface Exit { pid: number; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Starts `ddpo ...argv`; `exit` resolves when it ends. */
function ddpo(...argv: string[]): { pid: number; kill: (s: NodeJS.Signals) => boolean; exit: Promise<Exit> } {
  const child = spawn(process.execPath, [cli, ...argv], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exit = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ pid: child.pid!, code, signal, stdout, stderr })));
  return { pid: child.pid!, kill: (s) => child.kill(s), exit };
}

/** An experiment on the embedded model with a DDPO config of sub-second epochs. */
async function experiment(settings: Record<string, unknown>): Promise<string> {
  const store = new ExperimentStore(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-procs-')));
  await store.create('e', { baseModel: { id: EMBEDDED_MODEL_ID }, prompts: ['a big red circle on a blue background', 'a small green square'] });
  const dir = store.dirOf('e');
  setDdpo(dir, settings);
  return dir;
}

function setDdpo(dir: string, settings: Record<string, unknown>): void {
  fs.writeFileSync(ddpoLayout(dir).configFile, JSON.stringify({
    sample_num_steps: 2, sample_batch_size: 2, sample_num_batches_per_epoch: 1, train_batch_size: 1, train_gradient_accumulation_steps: 2,
    eval_seeds: [], latent_size: 16, reward: 'jpeg_incompressibility', ...settings,
  }));
}

const epochs = (dir: string) => readMetrics(ddpoLayout(dir).metricsFile).map((m) => m.epoch);
const status = (dir: string) => JSON.parse(fs.readFileSync(ddpoLayout(dir).statusFile, 'utf8')) as { state: string };

// Two processes started together: exactly one exits 0, the other exits 1 naming the first as the holder.
async function raceTwo(dir: string, ...argv: string[]): Promise<void> {
  const [a, b] = await Promise.all([ddpo(...argv).exit, ddpo(...argv).exit]);
  const winners = [a, b].filter((r) => r.code === 0);
  assert.equal(winners.length, 1, `exactly one run may succeed:\n${a.stderr}\n---\n${b.stderr}`);
  const [won, lost] = winners[0] === a ? [a, b] : [b, a];
  const label = argv.includes('--resume') ? 'ddpo train --resume' : 'ddpo train';
  assert.equal(lost.code, 1, lost.stderr);
  assert.ok(lost.stderr.startsWith(`${dir} is in use by ${label} (pid ${won.pid} on this machine, since `), lost.stderr);
  assert.match(lost.stderr, /wait for it to finish or stop it, then try again/);
  assert.doesNotMatch(lost.stdout, /epoch \d+:/, 'the refused run trained nothing');
  assert.equal(fs.existsSync(path.join(dir, RUN_LOCK_FILE)), false, 'the lock is released');
}

test('`ddpo train` twice at the same moment: one runs, the other refuses naming it; the same for --resume; every epoch once, in order', { skip: noModel, timeout: 300_000 }, async () => {
  for (let round = 0; round < 5; round++) {
    const dir = await experiment({ num_epochs: 2 });
    await raceTwo(dir, 'train', '--experiment', dir);
    assert.deepEqual(epochs(dir), [0, 1]);
    setDdpo(dir, { num_epochs: 3 });
    await raceTwo(dir, 'train', '--experiment', dir, '--resume');
    assert.deepEqual(epochs(dir), [0, 1, 2]);
    assert.equal(status(dir).state, 'done');
  }
});

test('SIGTERM or SIGINT mid-training leaves status "stopped" and the lock released; --resume then finishes every epoch once', { skip: noModel, timeout: 120_000 }, async () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const dir = await experiment({ num_epochs: 5 });
    const run = ddpo('train', '--experiment', dir);
    await waitFor(() => listCheckpoints(ddpoLayout(dir).checkpointsDir).length > 0);
    run.kill(signal);
    const stopped = await run.exit;
    assert.equal(stopped.code, 130, stopped.stderr);
    assert.match(stopped.stderr, /stopped; resume with --resume/);
    assert.equal(status(dir).state, 'stopped');
    assert.equal(fs.existsSync(path.join(dir, RUN_LOCK_FILE)), false);
    assert.ok(epochs(dir).length < 5, `${signal} landed after the run finished`);
    const resumed = await ddpo('train', '--experiment', dir, '--resume').exit;
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(epochs(dir), [0, 1, 2, 3, 4]);
    assert.equal(status(dir).state, 'done');
  }
});

test('SIGKILL mid-training: the run reads as interrupted, and --resume takes over the lock the killed process left', { skip: noModel, timeout: 120_000 }, async () => {
  const dir = await experiment({ num_epochs: 5 });
  const run = ddpo('train', '--experiment', dir);
  await waitFor(() => listCheckpoints(ddpoLayout(dir).checkpointsDir).length > 0);
  assert.equal(readRunState(dir, false).state, 'running', 'a run in another process (a terminal) shows as running');
  run.kill('SIGKILL');
  await run.exit;
  assert.equal(status(dir).state, 'running');
  assert.equal(readRunState(dir, false).state, 'interrupted');
  const resumed = await ddpo('train', '--experiment', dir, '--resume').exit;
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.ok(resumed.stdout.includes(`${dir}: taking over the lock left by ddpo train (pid ${run.pid}, since `), resumed.stdout);
  assert.deepEqual(epochs(dir), [0, 1, 2, 3, 4]);
  assert.equal(readRunState(dir, false).state, 'done');
});

async function waitFor(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setTimeout(r, 10));
}

// `experiments new` run with a shell prefix (a resource limit, a namespace); its output and what the workspace holds.
function newExperimentUnder(shell: string): { status: number | null; out: string } {
  const r = spawnSync('bash', ['-c', shell], { cwd: repo, encoding: 'utf8', env: { ...process.env, CLI: cli } });
  return { status: r.status, out: r.stdout + r.stderr };
}

const noBash = process.platform === 'win32' ? 'needs bash and ulimit' : false;

test('`experiments new` whose write fails after the folder is made leaves nothing, and the name stays free', { skip: noBash }, () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-new-'));
  // RLIMIT_FSIZE 0: the kernel refuses the first byte of experiment.json (EFBIG), like a full disk, without root
  const r = newExperimentUnder(`ulimit -f 0; exec node "$CLI" experiments new cats --workspace "${ws}"`);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /Could not create the experiment "cats" in .*EFBIG.*Nothing was left behind and the name is still free/);
  assert.deepEqual(fs.readdirSync(path.join(ws, '.ddpo')), []);
  const again = newExperimentUnder(`exec node "$CLI" experiments new cats --workspace "${ws}"`);
  assert.equal(again.status, 0, again.out);
  assert.deepEqual(fs.readdirSync(path.join(ws, '.ddpo')), ['cats']);
});

// A private mount namespace (unshare -rm) mounts a small tmpfs without touching the machine's mounts; CI runners
// that forbid unprivileged namespaces skip this and keep the RLIMIT_FSIZE test above.
const noNamespace = noBash || (spawnSync('unshare', ['-rm', 'true']).status === 0 ? false : 'unshare -rm is not available here');

test('`experiments new` on a full disk (a full 64 KiB tmpfs) leaves nothing that blocks the name', { skip: noNamespace }, () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-full-'));
  const r = newExperimentUnder(`unshare -rm bash -c 'mount -t tmpfs -o size=64k tmpfs "${ws}" && { head -c 1000000 /dev/zero > "${ws}/filler" 2>/dev/null; ` +
    `node "$CLI" experiments new cats --workspace "${ws}"; echo "exit $?"; echo "left: $(ls -A "${ws}/.ddpo")"; rm "${ws}/filler"; node "$CLI" experiments new cats --workspace "${ws}"; }'`);
  assert.match(r.out, /Could not create the experiment "cats" in .*ENOSPC.*Nothing was left behind/, r.out);
  assert.match(r.out, /^exit 1$/m, r.out);
  assert.match(r.out, /^left: $/m, r.out);
  assert.match(r.out, /^Created .*cats$/m, r.out);
});
