/** `ddpo install-cuda`: installs onnxruntime-node's CUDA 12 provider libraries after checking the machine can use them. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defineCommand } from './command';
import { checkCuda, installCudaProvider } from '../core/runtime/cudaInstall';
import { ortBinDir } from '../core/runtime/providers';

function ortVersion(): string {
  return (JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
}

/** `ddpo install-cuda [--force] [--tensorrt] [--feed URL] [--bin-dir DIR]` */
export const installCudaCommand = defineCommand({
  path: ['install-cuda'],
  summary: "Install onnxruntime's CUDA 12 provider (NVIDIA GPUs on Linux)",
  flags: { force: 'boolean', tensorrt: 'boolean', feed: 'text', 'bin-dir': 'text' },
  usage: 'ddpo install-cuda [--force] [--tensorrt] [--feed URL] [--bin-dir DIR]\n' +
    '  Checks the NVIDIA driver and the CUDA 12 / cuDNN 9 runtime libraries, then downloads the provider libraries\n' +
    "  matching the installed onnxruntime-node from NuGet (Microsoft.ML.OnnxRuntime.Gpu.Linux) into onnxruntime-node's folder.\n" +
    '  --force     install even when no NVIDIA driver is found (e.g. to prepare an image)\n' +
    '  --tensorrt  also install the TensorRT provider library\n' +
    '  --feed URL  a NuGet v3 index to use instead of api.nuget.org (a mirror)\n' +
    '  Without network access: on a machine that has it, download the .nupkg from\n' +
    '  https://www.nuget.org/packages/Microsoft.ML.OnnxRuntime.Gpu.Linux, serve or copy it, and pass --feed.',
  async run({ flags }, io) {
    const check = checkCuda();
    io.out(check.driver ? `NVIDIA driver: CUDA ${check.driverCuda ?? '?'}${check.gpu ? `, ${check.gpu}` : ''}` : 'NVIDIA driver: not found');
    for (const p of check.problems) io.err(`cannot use CUDA: ${p}`);
    for (const w of check.warnings) io.err(`warning: ${w}`);
    if (check.problems.length && !flags.force) return 1;
    const binDir = flags['bin-dir'] ?? ortBinDir();
    if (!binDir) { io.err('onnxruntime-node is not installed next to ddpo; run npm install first'); return 1; }
    const version = ortVersion();
    let last = -1;
    try {
      const files = await installCudaProvider({
        version, binDir, feedIndex: flags.feed, withTensorRt: flags.tensorrt === true,
        signal: io.signal, log: io.out,
        onProgress: ({ received, total }) => {
          const pct = total ? Math.floor((100 * received) / total) : -1;
          if (pct !== last) { last = pct; io.progress(`downloading: ${(received / 2 ** 20).toFixed(0)} MiB${total ? ` of ${(total / 2 ** 20).toFixed(0)} MiB (${pct}%)` : ''}`); }
        },
      });
      io.out(`CUDA provider for onnxruntime ${version} installed: ${files.map((f) => path.basename(f)).join(', ')}`);
      io.out(check.warnings.length ? 'It will load once the CUDA 12 libraries above are installed; until then --ep auto uses WebGPU or CPU.' : 'Use it with --ep cuda (or auto).');
      return 0;
    } catch (e) {
      const msg = (e as Error).message;
      io.err(`install-cuda failed: ${msg}`);
      if (/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|failed:/.test(msg)) {
        io.err('No connection to the package feed. Behind a proxy or offline: download Microsoft.ML.OnnxRuntime.Gpu.Linux ' +
          `${version} (.nupkg) elsewhere and point --feed at a NuGet v3 index serving it; or use --ep webgpu, which needs no download.`);
      }
      return 1;
    }
  },
});
