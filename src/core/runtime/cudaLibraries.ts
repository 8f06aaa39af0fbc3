/**
 * The CUDA and cuDNN libraries onnxruntime's CUDA provider loads: where they are on this machine (a CUDA toolkit, the
 * NVIDIA pip wheels of each Python on PATH, system folders), and the record that lets the worker and `ddpo` find them.
 *
 * The dynamic loader reads LD_LIBRARY_PATH once, when a process starts, so a running process cannot add a folder for
 * the provider's libraries. `ddpo install-cuda` therefore records the folders it found in `ddpo-cuda.json` beside the
 * provider; the extension forks the worker with them on LD_LIBRARY_PATH, and the `ddpo` CLI starts itself once more
 * with them when they are missing from its own (see {@link cudaLibraryEnv}).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFileSync } from '../fsutil';

/** A folder that may hold CUDA libraries and what put it there, e.g. "python3 (/usr/bin/python3): NVIDIA wheels". */
export interface LibraryPlace {
  dir: string;
  origin: string;
  /** On the loader's default path (ldconfig's cache or a system folder): nothing to add to LD_LIBRARY_PATH. */
  system?: boolean;
}

/** Each wanted soname's file and the place it came from; the folders the loader must be told about. */
export interface LibrarySearch {
  found: Record<string, { file: string; origin: string }>;
  missing: string[];
  /** Folders of found libraries that are not on the loader's default path, in search order. */
  dirs: string[];
}

/** Runs a program and returns its stdout; throws when it cannot run. */
export type Exec = (cmd: string, args: string[]) => string;

/** The real {@link Exec}: 20 s at most, stderr dropped. */
export const defaultExec: Exec = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] });

/** Folder holding onnxruntime_binding.node (and any installed provider libraries) for this platform. */
export function ortBinDir(platform: string = process.platform, arch: string = process.arch): string | undefined {
  try {
    return path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', platform, arch);
  } catch {
    return undefined;
  }
}

/** The file next to the provider libraries that records where their CUDA libraries are. */
export const CUDA_RECORD = 'ddpo-cuda.json';

// Libraries of the C runtime that every Linux has; the provider's other DT_NEEDED entries are CUDA's.
const SYSTEM_LIB = /^(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[\w-]*)\.so/;

/** The sonames the CUDA provider needs from CUDA: its DT_NEEDED (less the C runtime) and cuDNN, which it opens later. */
export function cudaSonames(needed: readonly string[]): string[] {
  return [...needed.filter((n) => !SYSTEM_LIB.test(n)), 'libcudnn.so.9'];
}

/** The sonames a CUDA `major` build of the provider needs, for when no provider library is at hand to read them from. */
export function defaultCudaSonames(major: number): string[] {
  return cudaSonames([`libcublasLt.so.${major}`, `libcublas.so.${major}`, 'libcurand.so.10', `libcudart.so.${major}`, 'libcuda.so.1']);
}

// Prints the site-packages folders of the Python running it, one per line.
const SITE_PACKAGES = 'import site, sys\nc = []\ntry: c += site.getsitepackages()\nexcept Exception: pass\ntry: c.append(site.getusersitepackages())\nexcept Exception: pass\nprint("\\n".join(dict.fromkeys(p for p in c + sys.path if p)))';

/** The distinct Python interpreters on `PATH` (python3 and python), by real path. */
export function pythonsOnPath(env: NodeJS.ProcessEnv): string[] {
  const seen = new Map<string, string>();
  for (const dir of (env.PATH ?? '').split(':').filter(Boolean)) {
    for (const name of ['python3', 'python']) {
      const p = path.join(dir, name);
      try {
        const real = fs.realpathSync(p);
        if (!seen.has(real)) seen.set(real, p);
      } catch { /* not there */ }
    }
  }
  return [...seen.values()];
}

/** The `nvidia/<package>/lib` folders of the NVIDIA pip wheels (and PyTorch's own `torch/lib`) under each site-packages. */
export function wheelPlaces(python: string, sitePackages: readonly string[]): LibraryPlace[] {
  const out: LibraryPlace[] = [];
  for (const sp of sitePackages) {
    const nv = path.join(sp, 'nvidia');
    let pkgs: string[] = [];
    try { pkgs = fs.readdirSync(nv).sort(); } catch { /* no NVIDIA wheels here */ }
    for (const p of pkgs) {
      const dir = path.join(nv, p, 'lib');
      if (fs.existsSync(dir)) out.push({ dir, origin: `${python}: NVIDIA pip wheel nvidia/${p}` });
    }
    const torch = path.join(sp, 'torch', 'lib');
    if (fs.existsSync(torch)) out.push({ dir: torch, origin: `${python}: PyTorch wheel` });
  }
  return out;
}

/** CUDA toolkit roots: CUDA_HOME, CUDA_PATH, /usr/local/cuda and /usr/local/cuda-N.M (newest first), /opt/cuda. */
export function toolkitRoots(env: NodeJS.ProcessEnv): string[] {
  const roots = [env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda'].filter((r): r is string => !!r);
  try { roots.push(...fs.readdirSync('/usr/local').filter((d) => /^cuda-\d/.test(d)).sort().reverse().map((d) => path.join('/usr/local', d))); } catch { /* no /usr/local */ }
  return [...roots, '/opt/cuda'];
}

function toolkitPlaces(roots: string[]): LibraryPlace[] {
  return roots.flatMap((r) => ['lib64', 'targets/x86_64-linux/lib'].map((sub) => ({ dir: path.join(r, sub), origin: `CUDA toolkit ${r}` })));
}

/** `ldconfig -p`'s x86-64 entries: soname to file. */
export function parseLdconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^\s*(\S+) \(([^)]*)\) => (\S+)$/gm)) if (m[2].includes('x86-64') && !out.has(m[1])) out.set(m[1], m[3]);
  return out;
}

/** Options of {@link findCudaLibraries}; defaults are this machine's. */
export interface SearchOptions {
  env?: NodeJS.ProcessEnv;
  exec?: Exec;
  /** Python interpreters whose wheels to look in (default: those on PATH). */
  pythons?: string[];
  /** Folders the loader searches by default (default: the usual Linux ones, and the container and WSL driver folders are searched too). */
  systemDirs?: string[];
  /** CUDA toolkit roots (default: {@link toolkitRoots}). */
  toolkits?: string[];
}

// The loader's own default folders; the driver folders of NVIDIA's container runtime and of WSL are searched as places
// to add, since the loader finds them only when ld.so.conf or LD_LIBRARY_PATH names them.
const SYSTEM_DIRS = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib64', '/lib64'];
const DRIVER_DIRS = ['/usr/local/nvidia/lib64', '/usr/lib/wsl/lib'];

/**
 * Every folder to look in, in order: LD_LIBRARY_PATH (the person's own choice), the CUDA toolkit, each Python's NVIDIA
 * wheels and PyTorch's, the driver folders of containers and WSL, ldconfig's cache, then the system folders.
 */
export function libraryPlaces(opts: SearchOptions = {}): { places: LibraryPlace[]; ldconfig: Map<string, string> } {
  const env = opts.env ?? process.env, exec = opts.exec ?? defaultExec;
  const places: LibraryPlace[] = (env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean).map((dir) => ({ dir, origin: 'LD_LIBRARY_PATH' }));
  places.push(...toolkitPlaces(opts.toolkits ?? toolkitRoots(env)));
  if (env.CONDA_PREFIX) places.push({ dir: path.join(env.CONDA_PREFIX, 'lib'), origin: `conda environment ${env.CONDA_PREFIX}` });
  for (const py of opts.pythons ?? pythonsOnPath(env)) {
    let sites: string[] = [];
    try { sites = exec(py, ['-c', SITE_PACKAGES]).split('\n').map((s) => s.trim()).filter(Boolean); } catch { /* a Python that does not run */ }
    places.push(...wheelPlaces(py, sites));
  }
  let ldconfig = new Map<string, string>();
  try { ldconfig = parseLdconfig(exec('ldconfig', ['-p'])); } catch {
    try { ldconfig = parseLdconfig(exec('/sbin/ldconfig', ['-p'])); } catch { /* no ldconfig */ }
  }
  if (!opts.systemDirs) places.push(...DRIVER_DIRS.map((dir) => ({ dir, origin: 'NVIDIA driver folder' })));
  places.push(...(opts.systemDirs ?? SYSTEM_DIRS).map((dir) => ({ dir, origin: 'system folder', system: true })));
  return { places, ldconfig };
}

/** Looks for each soname in the places, in order; ldconfig's cache answers before the system folders. */
export function findCudaLibraries(sonames: readonly string[], opts: SearchOptions = {}): LibrarySearch {
  const { places, ldconfig } = libraryPlaces(opts);
  const res: LibrarySearch = { found: {}, missing: [], dirs: [] };
  for (const so of sonames) {
    const place = places.filter((p) => !p.system).find((p) => fs.existsSync(path.join(p.dir, so)));
    const cached = ldconfig.get(so);
    const sys = place ? undefined : places.find((p) => p.system && fs.existsSync(path.join(p.dir, so)));
    if (place) {
      res.found[so] = { file: path.join(place.dir, so), origin: place.origin };
      if (!res.dirs.includes(place.dir)) res.dirs.push(place.dir);
    } else if (cached) res.found[so] = { file: cached, origin: 'ldconfig cache' };
    else if (sys) res.found[so] = { file: path.join(sys.dir, so), origin: sys.origin };
    else res.missing.push(so);
  }
  return res;
}

/** What `ddpo install-cuda` recorded beside the provider. */
export interface CudaRecord {
  schemaVersion: 1;
  /** The onnxruntime release of the installed provider. */
  onnxruntime: string;
  /** The CUDA major it was built for. */
  cuda: number;
  /** Where the provider came from (a NuGet URL, a file, an npm spec). */
  source: string;
  /** Folders to put on LD_LIBRARY_PATH for the provider's CUDA and cuDNN libraries. */
  libraryDirs: string[];
  /** Sonames that were not found when it was installed. */
  missing: string[];
}

/** Writes the record into `binDir` atomically: a reader never sees half a file. */
export function writeCudaRecord(binDir: string, record: CudaRecord): string {
  const f = path.join(binDir, CUDA_RECORD);
  atomicWriteFileSync(f, JSON.stringify(record, null, 1) + '\n');
  return f;
}

/** The record in `binDir`; undefined when there is none or it cannot be read. */
export function readCudaRecord(binDir: string | undefined): CudaRecord | undefined {
  if (!binDir) return undefined;
  try {
    const r = JSON.parse(fs.readFileSync(path.join(binDir, CUDA_RECORD), 'utf8')) as CudaRecord;
    return Array.isArray(r.libraryDirs) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Marks a process started by {@link cudaLibraryEnv}'s caller with the library path already set (no second restart). */
export const CUDA_ENV_MARK = 'DDPO_CUDA_LIBRARY_PATH';

/**
 * The environment a process needs for the recorded CUDA libraries: `env` with the recorded folders that exist appended to
 * LD_LIBRARY_PATH (the person's own entries keep precedence). Undefined when nothing is recorded or all are there.
 */
export function cudaLibraryEnv(env: NodeJS.ProcessEnv, binDir: string | undefined = ortBinDir()): NodeJS.ProcessEnv | undefined {
  const have = (env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  const add = (readCudaRecord(binDir)?.libraryDirs ?? []).filter((d) => !have.includes(d) && fs.existsSync(d));
  if (!add.length) return undefined;
  return { ...env, LD_LIBRARY_PATH: [...have, ...add].join(':'), [CUDA_ENV_MARK]: '1' };
}

/** False when the command line names a provider other than CUDA (`--ep cpu`, `--ep=webgpu`): no CUDA library is loaded. */
export function mayUseCuda(argv: readonly string[]): boolean {
  const i = argv.findIndex((a) => a === '--ep' || a.startsWith('--ep='));
  if (i < 0) return true;
  const v = argv[i].startsWith('--ep=') ? argv[i].slice(5) : argv[i + 1];
  return v === 'cuda' || v === 'auto';
}
