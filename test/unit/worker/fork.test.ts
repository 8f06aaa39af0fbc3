import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { WorkerClient, type CrashInfo } from '../../../src/worker/client';
import { forkChannelFactory } from '../../../src/worker/forkChannel';

const repo = path.resolve(__dirname, '../../..');
// Built next to the repo's node_modules so the bundle finds onnxruntime-node the way dist/worker.js does.
const script = path.join(repo, 'dist-test', 'unit', 'worker.js');

before(async () => {
  await build({ entryPoints: [path.join(repo, 'src/worker/main.ts')], outfile: script, bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['onnxruntime-node', 'onnxruntime-common'], logLevel: 'error' });
});

test('the forked worker reports node, onnxruntime and its execution providers', { timeout: 30_000 }, async () => {
  let output = '';
  const client = new WorkerClient(forkChannelFactory({ script, onOutput: (t) => (output += t) }));
  try {
    const status = await client.request('status', { executionProvider: 'cpu' });
    assert.equal(status.node, process.versions.node);
    assert.match(status.onnxruntime ?? '', /^1\.\d+\.\d+$/);
    assert.ok(status.executionProviders.includes('cpu'), `providers: ${status.executionProviders}`);
    assert.equal(status.chosenExecutionProvider, 'cpu');
    assert.notEqual(status.pid, process.pid);
    assert.match(output, /DDPO Studio worker started/);
  } finally {
    client.dispose();
  }
});

test('killing the worker process is reported as a crash, and the next request gets a new process', { timeout: 30_000 }, async () => {
  const crashes: CrashInfo[] = [];
  const client = new WorkerClient(forkChannelFactory({ script }), { onCrash: (c) => crashes.push(c) });
  try {
    const first = await client.request('ping', {});
    const pending = client.request('selfTest', { steps: 10_000, delayMs: 10 });
    process.kill(first.pid, 'SIGKILL');
    await assert.rejects(pending, /stopped unexpectedly \(was killed by SIGKILL\)/);
    assert.equal(crashes.length, 1);
    const second = await client.request('ping', {});
    assert.notEqual(second.pid, first.pid);
  } finally {
    client.dispose();
  }
});

test('the worker exits when its parent process dies', { timeout: 30_000 }, async () => {
  // A throwaway parent forks the worker, prints the worker's pid, then is killed.
  const parentCode = `
    const { fork } = require('node:child_process');
    const w = fork(${JSON.stringify(script)}, [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    w.on('message', (m) => { if (m.type === 'hello') console.log(m.pid); });
    setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['-e', parentCode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const workerPid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  assert.ok(isAlive(workerPid));
  parent.kill('SIGKILL');
  while (isAlive(workerPid)) await new Promise((r) => setTimeout(r, 50));
});

// A dead child of a dead parent may linger as a zombie until PID 1 reaps it: count that as gone.
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

test('the fork environment is read at each start, so a CUDA library path recorded later reaches the next worker', { timeout: 30_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(repo, 'dist-test', 'envprobe-'));
  const probe = path.join(dir, 'probe.js');
  fs.writeFileSync(probe, "process.send({ ld: process.env.LD_LIBRARY_PATH, electron: process.env.ELECTRON_RUN_AS_NODE }, () => process.exit(0));");
  let ld = '/first';
  const factory = forkChannelFactory({ script: probe, env: () => ({ ...process.env, LD_LIBRARY_PATH: ld }) });
  const seen = async () => {
    const ch = factory();
    return new Promise<unknown>((resolve) => ch.onMessage((m) => resolve(m)));
  };
  try {
    assert.deepEqual(await seen(), { ld: '/first', electron: '1' });
    ld = '/second';
    assert.deepEqual(await seen(), { ld: '/second', electron: '1' });
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
