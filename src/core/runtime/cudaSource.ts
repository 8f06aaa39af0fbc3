/**
 * Where onnxruntime's CUDA provider libraries come from: onnxruntime's NuGet package on a feed, or a local archive, folder
 * or npm package (`--from`). Each source is unpacked into a staging folder; nothing is installed here.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { listZip, readZipEntry } from '../zip';
import { extractFromTar } from './tar';

/** The public NuGet feed, where onnxruntime-node's own installer looks (its install-metadata.js). */
export const NUGET_INDEX = 'https://api.nuget.org/v3/index.json';
/**
 * onnxruntime's own feed for its CUDA 12 NuGet builds: from onnxruntime 1.27 the packages on nuget.org are built for
 * CUDA 13 (the 1.29.0 provider there needs libcudart.so.13) and the CUDA 12 builds, deprecated, are published here.
 */
export const NUGET_CUDA12_INDEX = 'https://aiinfra.pkgs.visualstudio.com/PublicPackages/_packaging/onnxruntime-cuda-12/nuget/v3/index.json';
/** The NuGet package holding the Linux x64 CUDA provider libraries of an onnxruntime release. */
export const CUDA_PACKAGE = 'Microsoft.ML.OnnxRuntime.Gpu.Linux';

/** The provider libraries by role; `cuda` and `shared` are needed, TensorRT's is optional. */
export const PROVIDER_LIBS = {
  cuda: 'libonnxruntime_providers_cuda.so',
  shared: 'libonnxruntime_providers_shared.so',
  tensorrt: 'libonnxruntime_providers_tensorrt.so',
} as const;

/** One provider library role. */
export type ProviderRole = keyof typeof PROVIDER_LIBS;

/** Where to take the provider from. */
export type ProviderSource =
  | { kind: 'nuget'; feed: string }
  | { kind: 'archive'; file: string }
  | { kind: 'dir'; dir: string }
  | { kind: 'npm'; spec: string };

/** The onnxruntime feed holding the NuGet build of the provider for CUDA `major` (see {@link NUGET_CUDA12_INDEX}). */
export function officialFeed(major: number): string {
  return major === 12 ? NUGET_CUDA12_INDEX : NUGET_INDEX;
}

/**
 * Reads `--from`: `npm:SPEC` (an npm package, fetched with `npm pack`), a folder, a provider `.so` (its folder is
 * used), or an archive (.nupkg, .zip, .whl, .tgz, .tar.gz, .tar).
 */
export function parseSource(from: string): ProviderSource {
  if (from.startsWith('npm:')) return { kind: 'npm', spec: from.slice(4) };
  if (!fs.existsSync(from)) throw new Error(`--from ${from}: no such file or folder (for an npm package write npm:NAME@VERSION)`);
  if (fs.statSync(from).isDirectory()) return { kind: 'dir', dir: from };
  if (/\.so(\.\d+)*$/.test(from)) return { kind: 'dir', dir: path.dirname(from) };
  if (/\.(nupkg|zip|whl|tgz|tar\.gz|tar)$/i.test(from)) return { kind: 'archive', file: from };
  throw new Error(`--from ${from}: not a folder, a provider .so or an archive (.nupkg, .zip, .whl, .tgz, .tar.gz, .tar)`);
}

/** Progress of a download. */
export interface DownloadProgress {
  received: number;
  /** From Content-Length; undefined when the server does not say. */
  total?: number;
}

/** Options of {@link stageProvider}. */
export interface StageOptions {
  /** onnxruntime version to ask a feed for. */
  version: string;
  /** An empty folder the libraries are unpacked into. */
  stageDir: string;
  onProgress?: (p: DownloadProgress) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Runs `npm pack SPEC` in a folder and returns the tarball's name (tests pass their own). */
  npmPack?: (spec: string, dir: string) => string;
}

/** The provider libraries found in a source, by role, and a description of the source. */
export interface StagedProvider {
  files: Partial<Record<ProviderRole, string>>;
  origin: string;
}

const defaultNpmPack = (spec: string, dir: string): string =>
  execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 }).trim().split('\n').pop()!.trim();

// Among archive paths with the wanted file name, the linux-x64 one: packages may carry other platforms' copies.
function bestPath(paths: string[]): string | undefined {
  const score = (p: string) => (/linux[-/]x64|x86_64|amd64/i.test(p) ? 2 : 0) - (/arm64|aarch64|win|osx|darwin/i.test(p) ? 5 : 0);
  return paths.sort((a, b) => score(b) - score(a) || a.length - b.length)[0];
}

function choosePaths(names: string[]): Map<string, ProviderRole> {
  const picked = new Map<string, ProviderRole>();
  for (const role of Object.keys(PROVIDER_LIBS) as ProviderRole[]) {
    const best = bestPath(names.filter((n) => path.posix.basename(n) === PROVIDER_LIBS[role]));
    if (best) picked.set(best, role);
  }
  return picked;
}

function stageZip(file: string, stageDir: string): StagedProvider {
  const entries = listZip(file);
  const picked = choosePaths(entries.map((e) => e.name));
  const files: StagedProvider['files'] = {};
  for (const e of entries) {
    const role = picked.get(e.name);
    if (!role) continue;
    files[role] = path.join(stageDir, PROVIDER_LIBS[role]);
    fs.writeFileSync(files[role]!, readZipEntry(file, e));
  }
  return { files, origin: file };
}

async function stageTar(file: string, stageDir: string, origin = file): Promise<StagedProvider> {
  // two passes would read a 180 MB archive twice; the names are few, so pick per basename as entries stream by and
  // keep the best-scoring path of each
  const files: StagedProvider['files'] = {};
  const seen = new Map<ProviderRole, string>();
  await extractFromTar(file, (name) => {
    const role = (Object.keys(PROVIDER_LIBS) as ProviderRole[]).find((r) => path.posix.basename(name) === PROVIDER_LIBS[r]);
    if (!role) return undefined;
    const prev = seen.get(role);
    if (prev && bestPath([prev, name]) === prev) return undefined;
    seen.set(role, name);
    return (files[role] = path.join(stageDir, PROVIDER_LIBS[role]));
  });
  return { files, origin };
}

function stageDirSource(dir: string): StagedProvider {
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    let entries: fs.Dirent[] = [];
    try { entries = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && depth < 6 && e.name !== 'node_modules') walk(p, depth + 1);
      else if (Object.values(PROVIDER_LIBS).includes(e.name as never)) found.push(p);
    }
  };
  walk(dir, 0);
  const files: StagedProvider['files'] = {};
  for (const [p, role] of choosePaths(found)) files[role] = p;
  return { files, origin: dir };
}

/**
 * Puts the provider libraries of `source` where they can be checked: unpacked into `stageDir` from an archive, an npm
 * package or a NuGet feed, or found in place in a folder. Throws when the source cannot be read or fetched.
 */
export async function stageProvider(source: ProviderSource, opts: StageOptions): Promise<StagedProvider> {
  switch (source.kind) {
    case 'dir':
      return stageDirSource(source.dir);
    case 'archive':
      return /\.(nupkg|zip|whl)$/i.test(source.file) ? stageZip(source.file, opts.stageDir) : stageTar(source.file, opts.stageDir);
    case 'npm': {
      opts.log?.(`npm pack ${source.spec}`);
      let tgz: string;
      try {
        tgz = path.join(opts.stageDir, (opts.npmPack ?? defaultNpmPack)(source.spec, opts.stageDir));
      } catch (e) {
        throw new Error(`npm pack ${source.spec} failed: ${firstLines((e as { stderr?: string }).stderr || (e as Error).message)}`);
      }
      const staged = await stageTar(tgz, opts.stageDir, `npm:${source.spec}`);
      fs.rmSync(tgz, { force: true });
      return staged;
    }
    case 'nuget':
      return stageNuget(source.feed, opts);
  }
}

function firstLines(s: string): string {
  return s.split('\n').filter((l) => l.trim()).slice(0, 3).join(' | ');
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

async function download(url: string, dest: string, opts: StageOptions): Promise<void> {
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

// Resolves the package through the feed's PackageBaseAddress (NuGet v3, as onnxruntime-node's installer does) and
// downloads the .nupkg with progress.
async function stageNuget(feed: string, opts: StageOptions): Promise<StagedProvider> {
  const index = (await getJson(feed, opts.signal)) as { resources?: { '@id': string; '@type': string }[] };
  const base = index.resources?.find((r) => r['@type'] === 'PackageBaseAddress/3.0.0')?.['@id'];
  if (!base) throw new Error(`${feed} is not a NuGet v3 index (no PackageBaseAddress/3.0.0)`);
  const id = CUDA_PACKAGE.toLowerCase();
  const versions = ((await getJson(`${base}${id}/index.json`, opts.signal)) as { versions?: string[] }).versions ?? [];
  const v = opts.version.toLowerCase();
  if (!versions.includes(v)) throw new Error(`${CUDA_PACKAGE} ${opts.version} is not on ${feed} (it has ${versions.slice(-5).join(', ') || 'none'}); the provider must match onnxruntime-node ${opts.version} exactly`);
  const pkg = path.join(opts.stageDir, `${id}.${v}.nupkg`);
  const url = `${base}${id}/${v}/${id}.${v}.nupkg`;
  opts.log?.(`downloading ${url}`);
  await download(url, pkg, opts);
  const staged = stageZip(pkg, opts.stageDir);
  fs.rmSync(pkg, { force: true });
  return { ...staged, origin: url };
}
