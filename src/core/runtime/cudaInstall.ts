/** `ddpo install-cuda`: checks for a usable CUDA 12 setup, then fetches onnxruntime-node's CUDA provider libraries from NuGet. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { atomicWriteFileSync } from '../fsutil';
import { listZip, readZipEntry } from './zip';

/** Where onnxruntime-node's own installer looks (its install-metadata.js): the public NuGet feed. */
export const NUGET_INDEX = 'https://api.nuget.org/v3/index.json';
/** The NuGet package holding the Linux x64 CUDA 12 provider libraries for a given onnxruntime version. */
export const CUDA_PACKAGE = 'Microsoft.ML.OnnxRuntime.Gpu.Linux';
/** Libraries the CUDA provider needs next to onnxruntime_binding.node (TensorRT's is optional). */
export const CUDA_LIBS = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

/** What this machine has for CUDA. */
export interface CudaCheck {
  driver: boolean;
  /** Highest CUDA version the driver supports (nvidia-smi's "CUDA Version"). */
  driverCuda?: string;
  gpu?: string;
  /** Runtime libraries found (libcudart.so.N, libcublas.so.N, libcudnn.so.N), by soname. */
  libs: Record<string, boolean>;
  /** Blocking problems with what to do about each; empty when CUDA 12 is usable. */
  problems: string[];
  /** Problems that still allow installing (the provider would fail to load until they are fixed). */
  warnings: string[];
}

type Exec = (cmd: string, args: string[]) => string;
const defaultExec: Exec = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });

/** Inspects the driver (nvidia-smi) and the CUDA 12 runtime libraries (ldconfig, LD_LIBRARY_PATH, /usr/local/cuda*). */
export function checkCuda(exec: Exec = defaultExec, platform: string = process.platform, arch: string = process.arch, libDirs = defaultLibDirs()): CudaCheck {
  const check: CudaCheck = { driver: false, libs: {}, problems: [], warnings: [] };
  if (platform !== 'linux' || arch !== 'x64') {
    check.problems.push(`onnxruntime-node ships CUDA provider libraries only for linux-x64 (this is ${platform}-${arch}); use --ep ${platform === 'win32' ? 'dml' : platform === 'darwin' ? 'coreml' : 'webgpu'} or webgpu instead`);
    return check;
  }
  try {
    const smi = exec('nvidia-smi', []);
    check.driver = true;
    check.driverCuda = /CUDA Version:\s*([\d.]+)/.exec(smi)?.[1];
    check.gpu = exec('nvidia-smi', ['-L']).split('\n')[0]?.trim();
  } catch {
    check.problems.push('no NVIDIA driver found (nvidia-smi did not run): CUDA needs an NVIDIA GPU and driver; use --ep webgpu (Vulkan) or cpu');
    return check;
  }
  const major = Number(check.driverCuda?.split('.')[0]);
  if (major && major < 12) check.problems.push(`the NVIDIA driver supports CUDA ${check.driverCuda}, but the onnxruntime CUDA provider needs CUDA 12: update the driver (R525 or newer)`);
  let ldconfig = '';
  try { ldconfig = exec('ldconfig', ['-p']); } catch { /* not everywhere on PATH */ }
  const has = (soname: string) => ldconfig.includes(soname) || libDirs.some((d) => fs.existsSync(path.join(d, soname)));
  for (const lib of ['libcudart.so.12', 'libcublas.so.12', 'libcudnn.so.9', 'libcudart.so.13']) check.libs[lib] = has(lib);
  const missing = ['libcudart.so.12', 'libcublas.so.12', 'libcudnn.so.9'].filter((l) => !check.libs[l]);
  if (missing.length) {
    const other = check.libs['libcudart.so.13'] ? ' (CUDA 13 libraries are present, but this onnxruntime build links against CUDA 12; both can be installed side by side)' : '';
    check.warnings.push(`CUDA 12 runtime libraries not found: ${missing.join(', ')}${other}. Install them (e.g. apt install cuda-runtime-12-x libcudnn9-cuda-12, or ` +
      '`pip install nvidia-cuda-runtime-cu12 nvidia-cublas-cu12 nvidia-cudnn-cu12 nvidia-cufft-cu12 nvidia-curand-cu12` and add their lib folders to LD_LIBRARY_PATH); until then the CUDA provider fails to load and DDPO Studio falls back to WebGPU or CPU');
  }
  return check;
}

function defaultLibDirs(): string[] {
  const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  try { for (const d of fs.readdirSync('/usr/local')) if (d.startsWith('cuda')) dirs.push(path.join('/usr/local', d, 'lib64')); } catch { /* no /usr/local */ }
  return [...dirs, '/usr/lib/x86_64-linux-gnu'];
}

/** Progress of the download. */
export interface DownloadProgress {
  received: number;
  /** From Content-Length; undefined when the server does not say. */
  total?: number;
}

/** Options of {@link installCudaProvider}. */
export interface InstallOptions {
  /** onnxruntime version whose provider to fetch (must match onnxruntime-node exactly). */
  version: string;
  /** Folder of onnxruntime_binding.node, where the libraries go. */
  binDir: string;
  feedIndex?: string;
  withTensorRt?: boolean;
  onProgress?: (p: DownloadProgress) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

function get(url: string, signal?: AbortSignal, redirects = 5): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).get(url, { signal }, (res) => {
      const code = res.statusCode ?? 0;
      if (code >= 300 && code < 400 && res.headers.location && redirects > 0) {
        res.resume();
        resolve(get(new URL(res.headers.location, url).toString(), signal, redirects - 1));
      } else if (code !== 200) {
        res.resume();
        reject(new Error(`GET ${url} answered HTTP ${code}`));
      } else resolve(res);
    });
    req.on('error', (e) => reject(new Error(`GET ${url} failed: ${e.message}`)));
  });
}

async function getJson(url: string, signal?: AbortSignal): Promise<unknown> {
  const res = await get(url, signal);
  let body = '';
  for await (const chunk of res) body += chunk;
  try { return JSON.parse(body); } catch { throw new Error(`${url} did not return JSON`); }
}

async function download(url: string, dest: string, opts: InstallOptions): Promise<void> {
  const res = await get(url, opts.signal);
  const total = Number(res.headers['content-length']) || undefined;
  const out = fs.createWriteStream(dest);
  let received = 0;
  try {
    for await (const chunk of res) {
      received += (chunk as Buffer).length;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      opts.onProgress?.({ received, total });
    }
  } finally {
    await new Promise<void>((r) => out.end(() => r()));
  }
  if (total !== undefined && received !== total) throw new Error(`download of ${url} stopped at ${received} of ${total} bytes; run the command again`);
}

/**
 * Resolves the package through the feed's PackageBaseAddress (NuGet v3, as onnxruntime-node's installer does),
 * downloads the .nupkg with progress and extracts the provider libraries into `binDir`. Returns the files written.
 */
export async function installCudaProvider(opts: InstallOptions): Promise<string[]> {
  const feed = opts.feedIndex ?? NUGET_INDEX;
  const log = opts.log ?? (() => {});
  const index = (await getJson(feed, opts.signal)) as { resources?: { '@id': string; '@type': string }[] };
  const base = index.resources?.find((r) => r['@type'] === 'PackageBaseAddress/3.0.0')?.['@id'];
  if (!base) throw new Error(`${feed} is not a NuGet v3 index (no PackageBaseAddress/3.0.0)`);
  const id = CUDA_PACKAGE.toLowerCase();
  const versions = ((await getJson(`${base}${id}/index.json`, opts.signal)) as { versions?: string[] }).versions ?? [];
  const v = opts.version.toLowerCase();
  if (!versions.includes(v)) throw new Error(`${CUDA_PACKAGE} ${opts.version} is not on ${feed} (it has ${versions.slice(-5).join(', ') || 'none'}); the provider must match onnxruntime-node ${opts.version} exactly`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cuda-'));
  try {
    const pkg = path.join(tmp, `${id}.${v}.nupkg`);
    const url = `${base}${id}/${v}/${id}.${v}.nupkg`;
    log(`downloading ${url}`);
    await download(url, pkg, opts);
    const entries = listZip(pkg);
    const wanted = [...CUDA_LIBS, ...(opts.withTensorRt ? ['libonnxruntime_providers_tensorrt.so'] : [])];
    fs.mkdirSync(opts.binDir, { recursive: true });
    const written: string[] = [];
    for (const lib of wanted) {
      const inside = `runtimes/linux-x64/native/${lib}`;
      const e = entries.find((x) => x.name === inside);
      if (!e) throw new Error(`${url} has no ${inside}; the package layout changed — report this`);
      const dest = path.join(opts.binDir, lib);
      // write beside, then rename: a half-written library must never be loaded
      atomicWriteFileSync(dest, readZipEntry(pkg, e));
      written.push(dest);
      log(`installed ${dest}`);
    }
    return written;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
