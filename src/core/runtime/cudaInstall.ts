/**
 * `ddpo install-cuda`: onnxruntime's CUDA provider for exactly the installed onnxruntime-node, for the CUDA the driver
 * runs (12 or 13), its CUDA and cuDNN libraries found and recorded, and a small graph run on CUDA against the CPU.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EM_X86_64, cudaMajorOf, readElf, readOrtVersions } from './elf';
import { CUDA_RECORD, cudaLibraryEnv, cudaSonames, defaultExec, findCudaLibraries, writeCudaRecord, type Exec, type LibrarySearch, type SearchOptions } from './cudaLibraries';
import { CUDA_PACKAGE, PROVIDER_LIBS, officialFeed, parseSource, stageProvider, type DownloadProgress, type ProviderSource, type StagedProvider } from './cudaSource';
import { verifyCudaProvider, type RunChild } from './cudaVerify';
import { commitFileSync } from '../fsutil';

/** What the NVIDIA driver offers. */
export interface DriverCheck {
  driver: boolean;
  /** Highest CUDA version the driver supports (nvidia-smi's "CUDA Version"). */
  driverCuda?: string;
  gpu?: string;
  /** Blocking problems, each with what to do. */
  problems: string[];
}

/** The CUDA majors onnxruntime builds its provider for. */
export const CUDA_MAJORS = [12, 13] as const;

/** Inspects the driver with nvidia-smi; on other platforms than linux-x64 says what to use instead. */
export function checkDriver(exec: Exec = defaultExec, platform: string = process.platform, arch: string = process.arch): DriverCheck {
  const check: DriverCheck = { driver: false, problems: [] };
  if (platform !== 'linux' || arch !== 'x64') {
    check.problems.push(`ddpo install-cuda installs onnxruntime's CUDA provider for linux-x64 only (this is ${platform}-${arch}); use --ep ${platform === 'win32' ? 'dml' : platform === 'darwin' ? 'coreml' : 'webgpu'} or webgpu instead`);
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
  if (major && major < 12) check.problems.push(`the NVIDIA driver supports CUDA ${check.driverCuda}, but onnxruntime's CUDA provider needs CUDA 12 or 13: update the driver (R525 or newer for 12, R580 or newer for 13)`);
  return check;
}

/** The CUDA build to install and why, or why none fits. */
export type CudaChoice = { major: number; why: string } | { problem: string };

/**
 * Picks the provider's CUDA build: `requested` when the driver runs it; else the newest the driver runs, unless only an
 * older CUDA's runtime (libcudart.so.N) is installed, whose build then loads without installing more.
 */
export function chooseCudaMajor(driverCuda: string | undefined, hasRuntime: (major: number) => boolean, requested?: number): CudaChoice {
  const driver = Number(driverCuda?.split('.')[0]) || undefined;
  const runs = CUDA_MAJORS.filter((m) => driver === undefined || m <= driver);
  if (requested !== undefined) {
    if (!(CUDA_MAJORS as readonly number[]).includes(requested)) return { problem: `--cuda ${requested}: onnxruntime builds its provider for CUDA ${CUDA_MAJORS.join(' and ')}` };
    if (!runs.includes(requested as 12 | 13)) return { problem: `--cuda ${requested}: the driver supports CUDA ${driverCuda}; update the driver or choose --cuda ${runs.at(-1) ?? 12}` };
    return { major: requested, why: 'asked for with --cuda' };
  }
  if (!runs.length) return { problem: `the driver supports CUDA ${driverCuda}; onnxruntime's provider needs CUDA 12 or 13` };
  const newest = runs[runs.length - 1];
  const present = runs.filter((m) => hasRuntime(m));
  if (!present.includes(newest) && present.length) {
    const m = present[present.length - 1];
    return { major: m, why: `the driver supports CUDA ${driverCuda ?? '?'} and only CUDA ${m}'s runtime (libcudart.so.${m}) is installed` };
  }
  return { major: newest, why: driver === undefined ? 'no driver to ask; the newest build' : `the driver supports CUDA ${driverCuda}` };
}

/** What the provider library says about itself. */
export interface ProviderCheck {
  /** The onnxruntime release read from libonnxruntime_providers_cuda.so. */
  version?: string;
  /** The CUDA major it was built for (its libcudart.so.N). */
  cuda?: number;
  /** Its DT_NEEDED sonames. */
  needed: string[];
  problems: string[];
}

/**
 * Checks staged provider libraries against onnxruntime-node `ortVersion` and the driver: both libraries there, x86-64,
 * the same onnxruntime release (a provider of another release loads and then corrupts memory: it calls the core through
 * an unversioned C++ interface), and a CUDA build the driver runs.
 */
export function checkProvider(staged: StagedProvider, ortVersion: string, driverCuda?: string): ProviderCheck {
  const res: ProviderCheck = { needed: [], problems: [] };
  const lib = staged.files.cuda;
  for (const role of ['cuda', 'shared'] as const) {
    if (!staged.files[role]) res.problems.push(`${staged.origin} has no ${PROVIDER_LIBS[role]}`);
  }
  if (!lib) return res;
  let info;
  try { info = readElf(lib); } catch (e) { res.problems.push((e as Error).message); return res; }
  if (info.machine !== EM_X86_64) res.problems.push(`${lib} is not an x86-64 library (ELF machine ${info.machine})`);
  res.needed = info.needed;
  res.cuda = cudaMajorOf(info);
  const versions = readOrtVersions(lib);
  res.version = versions.length === 1 ? versions[0] : undefined;
  if (!versions.length) res.problems.push(`no onnxruntime version string in ${lib}: it cannot be checked against onnxruntime-node ${ortVersion}, so it is not installed; use onnxruntime's own package of ${ortVersion}`);
  else if (versions.length > 1) res.problems.push(`${lib} names several onnxruntime versions (${versions.join(', ')}): it cannot be checked against onnxruntime-node ${ortVersion}`);
  else if (res.version !== ortVersion) {
    res.problems.push(`${PROVIDER_LIBS.cuda} from ${staged.origin} is from onnxruntime ${res.version}, but onnxruntime-node here is ${ortVersion}: a provider calls the core through an unversioned interface, so another release loads and then corrupts memory. Install the provider of onnxruntime ${ortVersion}`);
  }
  const driver = Number(driverCuda?.split('.')[0]) || undefined;
  if (res.cuda !== undefined && driver !== undefined && res.cuda > driver) {
    res.problems.push(`the provider is the CUDA ${res.cuda} build but the driver supports CUDA ${driverCuda}: update the driver${res.cuda === 13 ? ' (R580 or newer)' : ''} or install the CUDA ${driver} build (--cuda ${driver})`);
  }
  return res;
}

/** Copies the staged libraries into `binDir` (beside, then renamed: a half-written library is never loaded). */
export function installProviderFiles(staged: StagedProvider, binDir: string, withTensorRt = false): string[] {
  fs.mkdirSync(binDir, { recursive: true });
  const written: string[] = [];
  for (const role of ['shared', 'cuda', ...(withTensorRt ? ['tensorrt' as const] : [])] as const) {
    const src = staged.files[role];
    if (!src) throw new Error(`${staged.origin} has no ${PROVIDER_LIBS[role]}`);
    const dest = path.join(binDir, PROVIDER_LIBS[role]);
    fs.copyFileSync(src, `${dest}.partial`);
    fs.chmodSync(`${dest}.partial`, 0o755);
    commitFileSync(`${dest}.partial`, dest);
    written.push(dest);
  }
  return written;
}

/** Where to get each missing library, for a CUDA `major` build. */
export function libraryHint(soname: string, major: number): string {
  const cu = major === 12 ? '-cu12' : '';
  if (soname.startsWith('libonnxruntime')) return "the provider's own library is missing beside onnxruntime-node: run ddpo install-cuda without --check";
  if (soname.startsWith('libcudnn')) return `cuDNN 9: pip install nvidia-cudnn-cu${major}, or NVIDIA's cudnn9-cuda-${major} package`;
  if (soname === 'libcuda.so.1') return "the NVIDIA driver's own library: install or repair the driver";
  const pkg = /^libcublas/.test(soname) ? 'nvidia-cublas' : /^libcurand/.test(soname) ? 'nvidia-curand' : /^libcufft/.test(soname) ? 'nvidia-cufft' : 'nvidia-cuda-runtime';
  return `CUDA ${major}: pip install ${pkg}${cu}${major === 13 ? ' (the CUDA 13 wheels PyTorch cu130 brings)' : ''}, or the CUDA ${major} toolkit`;
}

/** Where `ddpo install-cuda` writes. */
export interface InstallIO {
  out(line: string): void;
  err(line: string): void;
  progress(line: string): void;
}

/** Options of {@link installCuda}. */
export interface InstallCudaOptions {
  /** The installed onnxruntime-node's version: the provider must be of this release. */
  ortVersion: string;
  /** Folder of onnxruntime_binding.node and libonnxruntime.so.1, where the provider goes. */
  binDir: string;
  /** onnxruntime-node's entry file, for the verification's child process. */
  ortEntry: string;
  /** `--from`: a file, folder or `npm:SPEC`; otherwise onnxruntime's NuGet package. */
  from?: string;
  /** A NuGet v3 index to use instead of onnxruntime's feed for the chosen CUDA. */
  feed?: string;
  /** `--cuda 12|13`. */
  cuda?: number;
  /** Install even without an NVIDIA driver. */
  force?: boolean;
  withTensorRt?: boolean;
  /** Check the installed provider again (libraries, record, verification) without installing. */
  checkOnly?: boolean;
  /** Run the verification graph (default true). */
  verify?: boolean;
  env?: NodeJS.ProcessEnv;
  exec?: Exec;
  npmPack?: (spec: string, dir: string) => string;
  runChild?: RunChild;
  /** Where to look for the libraries, when not this machine's usual places. */
  search?: Pick<SearchOptions, 'pythons' | 'systemDirs' | 'toolkits'>;
  signal?: AbortSignal;
}

/** Installs (or with `checkOnly` re-checks) the CUDA provider; returns the exit code: 0 only when CUDA ran and agreed. */
export async function installCuda(opts: InstallCudaOptions, io: InstallIO): Promise<number> {
  const exec = opts.exec ?? defaultExec, env = opts.env ?? process.env;
  const search = (sonames: string[]) => findCudaLibraries(sonames, { ...opts.search, env, exec });
  const driver = checkDriver(exec);
  io.out(driver.driver ? `NVIDIA driver: CUDA ${driver.driverCuda ?? '?'}${driver.gpu ? `, ${driver.gpu}` : ''}` : 'NVIDIA driver: not found');
  for (const p of driver.problems) io.err(`cannot use CUDA: ${p}`);
  if (driver.problems.length && !opts.force) return 1;
  const stageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cuda-'));
  try {
    const staged = opts.checkOnly ? installedProvider(opts.binDir) : await fetchChosen(opts, driver, search, stageDir, io);
    if (!staged) return 1;
    const check = checkProvider(staged, opts.ortVersion, driver.driverCuda);
    io.out(`provider: ${staged.files.cuda ?? '?'} — onnxruntime ${check.version ?? '?'} (read from the library; onnxruntime-node here is ${opts.ortVersion}), CUDA ${check.cuda ?? '?'} build`);
    for (const p of check.problems) io.err(`refused: ${p}`);
    if (check.problems.length) return 1;
    if (!opts.checkOnly) {
      const files = installProviderFiles(staged, opts.binDir, opts.withTensorRt);
      io.out(`installed ${files.map((f) => path.basename(f)).join(', ')} into ${opts.binDir}`);
    }
    const libs = search(cudaSonames(check.needed));
    reportLibraries(libs, check.cuda ?? 13, io);
    writeCudaRecord(opts.binDir, { schemaVersion: 1, onnxruntime: opts.ortVersion, cuda: check.cuda ?? 13, source: staged.origin, libraryDirs: libs.dirs, missing: libs.missing });
    io.out(libs.dirs.length
      ? `The worker and ddpo put ${libs.dirs.join(':')} on LD_LIBRARY_PATH when they start (recorded in ${path.join(opts.binDir, CUDA_RECORD)}).`
      : `The libraries found are on the loader's default path; nothing to add to LD_LIBRARY_PATH (recorded in ${path.join(opts.binDir, CUDA_RECORD)}).`);
    return await verifyStep(opts, env, libs, io);
  } catch (e) {
    io.err(`install-cuda failed: ${(e as Error).message}`);
    if (/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|failed:/.test((e as Error).message) && !opts.from) {
      io.err(`No connection to the package feed. Offline or behind a proxy: fetch ${CUDA_PACKAGE} ${opts.ortVersion} (.nupkg) elsewhere and pass --from FILE, ` +
        'or --from npm:SPEC for a repackaging on npm; or use --ep webgpu, which needs no download.');
    }
    return 1;
  } finally {
    fs.rmSync(stageDir, { recursive: true, force: true });
  }
}

function installedProvider(binDir: string): StagedProvider {
  const files: StagedProvider['files'] = {};
  for (const role of ['cuda', 'shared'] as const) {
    const f = path.join(binDir, PROVIDER_LIBS[role]);
    if (fs.existsSync(f)) files[role] = f;
  }
  return { files, origin: binDir };
}

async function fetchChosen(opts: InstallCudaOptions, driver: DriverCheck, search: (s: string[]) => LibrarySearch, stageDir: string, io: InstallIO): Promise<StagedProvider | undefined> {
  let source: ProviderSource;
  if (opts.from) source = parseSource(opts.from);
  else {
    const runtimes = search(CUDA_MAJORS.map((m) => `libcudart.so.${m}`));
    const choice = chooseCudaMajor(driver.driverCuda, (m) => !!runtimes.found[`libcudart.so.${m}`], opts.cuda);
    if ('problem' in choice) { io.err(`cannot choose a CUDA build: ${choice.problem}`); return undefined; }
    io.out(`CUDA ${choice.major} build: ${choice.why}`);
    source = { kind: 'nuget', feed: opts.feed ?? officialFeed(choice.major) };
  }
  let last = -1;
  const staged = await stageProvider(source, {
    version: opts.ortVersion, stageDir, signal: opts.signal, log: io.out, npmPack: opts.npmPack,
    onProgress: ({ received, total }: DownloadProgress) => {
      const pct = total ? Math.floor((100 * received) / total) : -1;
      if (pct !== last) { last = pct; io.progress(`downloading: ${(received / 2 ** 20).toFixed(0)} MiB${total ? ` of ${(total / 2 ** 20).toFixed(0)} MiB (${pct}%)` : ''}`); }
    },
  });
  return staged;
}

function reportLibraries(libs: LibrarySearch, major: number, io: InstallIO): void {
  for (const [so, f] of Object.entries(libs.found)) io.out(`  ${so} → ${f.file} (${f.origin})`);
  for (const so of libs.missing) io.err(`  ${so} NOT FOUND — ${libraryHint(so, major)}`);
  if (libs.missing.length) io.err('Searched: LD_LIBRARY_PATH, the CUDA toolkit (CUDA_HOME, /usr/local/cuda*), the NVIDIA pip wheels of every python3 on PATH, ldconfig and the system folders. Install what is missing, then run ddpo install-cuda --check.');
}

async function verifyStep(opts: InstallCudaOptions, env: NodeJS.ProcessEnv, libs: LibrarySearch, io: InstallIO): Promise<number> {
  if (opts.verify === false) {
    io.out('verification skipped (--no-verify)');
    return libs.missing.length ? 1 : 0;
  }
  io.progress('verifying: a small graph on CUDA against the CPU…');
  const verdict = await verifyCudaProvider({ env: cudaLibraryEnv(env, opts.binDir) ?? env, ortEntry: opts.ortEntry, run: opts.runChild });
  if (verdict.ok) {
    io.out(`verified: ${verdict.message}. Use it with --ep cuda (or auto).`);
    return 0;
  }
  io.err(verdict.message);
  if (verdict.missingLibrary) io.err(`  ${libraryHint(verdict.missingLibrary, readMajor(opts.binDir))}; then run ddpo install-cuda --check`);
  io.err('Until CUDA runs, --ep auto uses WebGPU or the CPU.');
  return 1;
}

function readMajor(binDir: string): number {
  try { return cudaMajorOf(readElf(path.join(binDir, PROVIDER_LIBS.cuda))) ?? 13; } catch { return 13; }
}
