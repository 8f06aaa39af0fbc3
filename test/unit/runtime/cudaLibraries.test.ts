import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CUDA_ENV_MARK, cudaLibraryEnv, cudaSonames, defaultCudaSonames, findCudaLibraries, mayUseCuda, parseLdconfig, readCudaRecord, writeCudaRecord,
} from '../../../src/core/runtime/cudaLibraries';

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));
const touch = (dir: string, ...names: string[]) => { fs.mkdirSync(dir, { recursive: true }); for (const n of names) fs.writeFileSync(path.join(dir, n), ''); return dir; };

test('the sonames to find are the provider\'s needed CUDA libraries and cuDNN, never the C runtime', () => {
  assert.deepEqual(cudaSonames(['libcublasLt.so.13', 'libcudart.so.13', 'libcuda.so.1', 'libstdc++.so.6', 'libc.so.6', 'libm.so.6', 'ld-linux-x86-64.so.2', 'libgcc_s.so.1']),
    ['libcublasLt.so.13', 'libcudart.so.13', 'libcuda.so.1', 'libcudnn.so.9']);
  assert.deepEqual(defaultCudaSonames(12), ['libcublasLt.so.12', 'libcublas.so.12', 'libcurand.so.10', 'libcudart.so.12', 'libcuda.so.1', 'libcudnn.so.9']);
});

test("ldconfig's cache is read for x86-64 entries only", () => {
  const m = parseLdconfig('3 libs found in cache `/etc/ld.so.cache\'\n\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1\n\tlibcuda.so.1 (libc6) => /usr/lib32/libcuda.so.1\n\tlibz.so.1 (libc6,x86-64) => /lib/libz.so.1\n');
  assert.deepEqual([...m], [['libcuda.so.1', '/usr/lib/x86_64-linux-gnu/libcuda.so.1'], ['libz.so.1', '/lib/libz.so.1']]);
});

test("the library search finds a toolkit's, each Python's NVIDIA wheels' and PyTorch's libraries, and names the folders to add", () => {
  const root = tmp('cudalibs-');
  try {
    const site = path.join(root, 'venv', 'lib', 'python3.12', 'site-packages');
    const cu13 = touch(path.join(site, 'nvidia', 'cu13', 'lib'), 'libcublasLt.so.13', 'libcublas.so.13', 'libcudart.so.13');
    const cudnn = touch(path.join(site, 'nvidia', 'cudnn', 'lib'), 'libcudnn.so.9', 'libcudnn_graph.so.9');
    const torch = touch(path.join(site, 'torch', 'lib'), 'libtorch.so');
    const toolkit = path.join(root, 'cuda-13.0');
    const tkLib = touch(path.join(toolkit, 'lib64'), 'libcurand.so.10', 'libcudart.so.13');
    const system = touch(path.join(root, 'usr-lib'), 'libcuda.so.1');
    const python = path.join(root, 'venv', 'bin', 'python3');
    const calls: string[][] = [];
    const exec = (cmd: string, args: string[]) => {
      calls.push([cmd, ...args.slice(0, 1)]);
      if (cmd === python) return `${site}\n${path.join(root, 'nonexistent')}\n`;
      if (cmd === 'ldconfig') return '';
      throw new Error('no such program');
    };
    const res = findCudaLibraries(defaultCudaSonames(13), { env: { CUDA_HOME: toolkit }, exec, pythons: [python], systemDirs: [system], toolkits: [toolkit] });
    assert.deepEqual(calls, [[python, '-c'], ['ldconfig', '-p']]);
    assert.deepEqual(res.missing, []);
    assert.equal(res.found['libcudart.so.13'].file, path.join(tkLib, 'libcudart.so.13'), 'the toolkit comes before the wheels');
    assert.equal(res.found['libcudart.so.13'].origin, `CUDA toolkit ${toolkit}`);
    assert.deepEqual(res.found['libcublasLt.so.13'], { file: path.join(cu13, 'libcublasLt.so.13'), origin: `${python}: NVIDIA pip wheel nvidia/cu13` });
    assert.deepEqual(res.found['libcudnn.so.9'], { file: path.join(cudnn, 'libcudnn.so.9'), origin: `${python}: NVIDIA pip wheel nvidia/cudnn` });
    assert.deepEqual(res.found['libcuda.so.1'], { file: path.join(system, 'libcuda.so.1'), origin: 'system folder' });
    assert.deepEqual(res.dirs, [cu13, tkLib, cudnn], 'system folders are on the loader\'s path already');
    assert.ok(!res.dirs.includes(torch));
    // LD_LIBRARY_PATH is the person's own choice and comes first; ldconfig's cache answers for what nothing else has
    const own = touch(path.join(root, 'own'), 'libcublas.so.13');
    const withOwn = findCudaLibraries(['libcublas.so.13', 'libnvrtc.so.13', 'libcudnn_adv.so.9'], {
      env: { LD_LIBRARY_PATH: own }, exec: (c) => (c === 'ldconfig' ? '\tlibnvrtc.so.13 (libc6,x86-64) => /opt/x/libnvrtc.so.13\n' : ''), pythons: [], systemDirs: [], toolkits: [],
    });
    assert.deepEqual(withOwn.found['libcublas.so.13'], { file: path.join(own, 'libcublas.so.13'), origin: 'LD_LIBRARY_PATH' });
    assert.deepEqual(withOwn.found['libnvrtc.so.13'], { file: '/opt/x/libnvrtc.so.13', origin: 'ldconfig cache' });
    assert.deepEqual(withOwn.missing, ['libcudnn_adv.so.9']);
    assert.deepEqual(withOwn.dirs, [own]);
  } finally { fs.rmSync(root, { recursive: true, force: true }); }
});

test('the record beside the provider puts its library folders on LD_LIBRARY_PATH, after the person\'s own, once', () => {
  const root = tmp('cudarec-');
  try {
    const bin = touch(path.join(root, 'bin'));
    const a = touch(path.join(root, 'a')), b = touch(path.join(root, 'b'));
    assert.equal(cudaLibraryEnv({ PATH: '/bin' }, bin), undefined, 'no record: nothing to add');
    writeCudaRecord(bin, { schemaVersion: 1, onnxruntime: '1.29.0', cuda: 13, source: 'npm:x', libraryDirs: [a, b, path.join(root, 'gone')], missing: [] });
    assert.equal(readCudaRecord(bin)?.cuda, 13);
    const env = cudaLibraryEnv({ PATH: '/bin', LD_LIBRARY_PATH: `/mine:${b}` }, bin)!;
    assert.equal(env.LD_LIBRARY_PATH, `/mine:${b}:${a}`, 'a folder that no longer exists is left out');
    assert.equal(env.PATH, '/bin');
    assert.equal(env[CUDA_ENV_MARK], '1');
    assert.equal(cudaLibraryEnv(env, bin), undefined, 'all there: no second restart');
    fs.writeFileSync(path.join(bin, 'ddpo-cuda.json'), '{ broken');
    assert.equal(readCudaRecord(bin), undefined);
  } finally { fs.rmSync(root, { recursive: true, force: true }); }
});

test('ddpo restarts with the CUDA libraries only when its command line may use CUDA', () => {
  assert.equal(mayUseCuda(['train', '--experiment', 'x']), true, 'no --ep: a command whose default may be auto');
  assert.equal(mayUseCuda(['train', '--ep', 'cuda']), true);
  assert.equal(mayUseCuda(['bench', '--ep=auto']), true);
  assert.equal(mayUseCuda(['train', '--ep', 'cpu']), false);
  assert.equal(mayUseCuda(['generate', '--ep=webgpu']), false);
});
