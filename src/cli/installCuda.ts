/** `ddpo install-cuda`: onnxruntime's CUDA provider for the installed onnxruntime-node, its libraries found, verified on the GPU. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defineCommand } from './command';
import { installCuda } from '../core/runtime/cudaInstall';
import { ortBinDir } from '../core/runtime/cudaLibraries';

// The onnxruntime-node whose binaries are in `binDir` (<package>/bin/napi-v6/<platform>/<arch>): its version is the one
// the provider must match, its entry the one the verification loads.
function ortPackageFor(binDir: string): { version: string; entry: string } {
  const dirs = [path.resolve(binDir, '../../../..'), path.dirname(require.resolve('onnxruntime-node/package.json'))];
  for (const dir of dirs) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'onnxruntime-node') return { version: pkg.version, entry: require.resolve(dir) };
    } catch { /* a folder outside an onnxruntime-node package */ }
  }
  throw new Error(`no onnxruntime-node package found for ${binDir}`);
}

/** `ddpo install-cuda [--from FILE|DIR|npm:SPEC] [--cuda 12|13] [--check] ...` */
export const installCudaCommand = defineCommand({
  path: ['install-cuda'],
  summary: "Install onnxruntime's CUDA provider for NVIDIA GPUs on Linux (CUDA 12 or 13), find its libraries, verify it",
  flags: { from: 'text', cuda: ['12', '13'], feed: 'text', check: 'boolean', 'no-verify': 'boolean', force: 'boolean', tensorrt: 'boolean', 'bin-dir': 'text' },
  usage: 'ddpo install-cuda [--from FILE|DIR|npm:SPEC] [--cuda 12|13] [--feed URL] [--check] [--no-verify] [--force] [--tensorrt] [--bin-dir DIR]\n' +
    "  Installs onnxruntime's CUDA provider of exactly the installed onnxruntime-node's release beside it, for the CUDA the\n" +
    "  driver runs (nvidia-smi's CUDA Version): onnxruntime's NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux, the CUDA 13\n" +
    "  build from nuget.org, the CUDA 12 build from onnxruntime's onnxruntime-cuda-12 feed. A provider of another release is\n" +
    '  refused (its version is read from the library). Then finds the CUDA and cuDNN libraries it needs (LD_LIBRARY_PATH,\n' +
    '  the CUDA toolkit, the NVIDIA pip wheels of every python3 on PATH, PyTorch\'s wheel, ldconfig, system folders), records\n' +
    '  their folders for the worker and ddpo, and runs a small graph on CUDA against the CPU. Exits 0 only when CUDA ran.\n' +
    '  --from FILE|DIR|npm:SPEC  take the provider from a .nupkg/.zip/.whl/.tgz/.tar, a folder, a provider .so, or an npm\n' +
    '              package fetched with npm pack (e.g. npm:com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9, onnxruntime 1.29.0, CUDA 13)\n' +
    '  --cuda N    the CUDA build to download (default: the newest the driver runs)\n' +
    '  --feed URL  a NuGet v3 index to download from instead (a mirror)\n' +
    '  --check     do not install: check the installed provider, search the libraries again, update the record, verify\n' +
    '  --no-verify skip the run on the GPU\n' +
    '  --force     go on without an NVIDIA driver (e.g. to prepare an image); the verification then says why CUDA cannot run\n' +
    '  --tensorrt  also install the TensorRT provider library',
  async run({ flags }, io) {
    const binDir = flags['bin-dir'] ?? ortBinDir();
    if (!binDir) { io.err('onnxruntime-node is not installed next to ddpo; run npm install first'); return 1; }
    const ort = ortPackageFor(binDir);
    return installCuda({
      ortVersion: ort.version, binDir, ortEntry: ort.entry,
      from: flags.from,
      feed: flags.feed,
      cuda: flags.cuda === undefined ? undefined : Number(flags.cuda),
      checkOnly: flags.check === true, verify: flags['no-verify'] !== true, force: flags.force === true, withTensorRt: flags.tensorrt === true,
      signal: io.signal,
    }, io);
  },
});
