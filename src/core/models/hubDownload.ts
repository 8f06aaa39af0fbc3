import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { atomicWriteFileSync, commitFileSync, PathEscapeError, resolveInside } from '../fsutil';
import { statfs } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { backboneRepoProblem, selectBackboneFiles } from './backboneFolder';

/** Where and how to fetch a model from the Hugging Face Hub. */
export interface HubDownloadOptions {
  repo: string;
  revision?: string;
  /** Cache root; the model lands in `<cacheDir>/<owner>--<name>/<revision>/`. */
  cacheDir: string;
  /** Default {@link hubEndpoint}: `$HF_ENDPOINT`, else https://huggingface.co. */
  baseUrl?: string;
  /** Access token for gated/private repos (sent as `Authorization: Bearer`); callers pass `$HF_TOKEN`. */
  token?: string;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Retries per file after a dropped connection (each resumes with HTTP Range). Default 3. */
  retries?: number;
  /** Which files of the repo to fetch (default {@link PIPELINE_REPO}: a Stable Diffusion ONNX pipeline). */
  layout?: RepoLayout;
}

/** Which files of a repo a download takes, and what it must hold. */
export interface RepoLayout {
  /** The files to fetch, out of the repo's listing. */
  select(paths: string[]): string[];
  /** Why the selected files are not enough (undefined when they are); `repoAt` is `owner/name@revision`. */
  problem(wanted: string[], repoAt: string): string | undefined;
}

/** Download progress, after each received chunk. */
export interface DownloadProgress {
  file: string;
  fileBytes: number;
  fileTotal: number;
  bytes: number;
  total: number;
}

interface RepoFile { path: string; size?: number }

const COMPONENTS = ['unet', 'text_encoder', 'text_encoder_2', 'vae_decoder', 'vae_encoder'];
const TOKENIZER_FILES = ['vocab.json', 'merges.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
// Weights in other formats sit next to the ONNX files in many repos; the pipeline never reads them.
const SKIP = /\.(safetensors|bin|msgpack|ckpt|pt|pth|h5|ot|md)$|(^|\/)\.gitattributes$/;

/** The files the ONNX pipeline uses, out of a repo listing (configs, tokenizer, ONNX models and their external data). */
export function selectPipelineFiles(paths: string[]): string[] {
  return paths.filter((p) => {
    if (p === 'model_index.json' || p === 'scheduler/scheduler_config.json') return true;
    const [dir, ...rest] = p.split('/');
    const name = rest.join('/');
    if (dir === 'tokenizer' || dir === 'tokenizer_2') return TOKENIZER_FILES.includes(name);
    return COMPONENTS.includes(dir) && rest.length >= 1 && !SKIP.test(name);
  });
}

/** A Stable Diffusion ONNX pipeline: model_index.json, scheduler, tokenizer, unet/, text_encoder/, vae_decoder/ (vae_encoder/ when there). */
export const PIPELINE_REPO: RepoLayout = {
  select: selectPipelineFiles,
  problem(wanted, repoAt) {
    const missing = ['model_index.json', 'unet/model.onnx', 'text_encoder/model.onnx', 'vae_decoder/model.onnx'].filter((f) => !wanted.includes(f));
    return missing.length ? `${repoAt} is not a Stable Diffusion ONNX repo: it lacks ${missing.join(', ')}. Pick a repo (or revision, e.g. 'onnx') with the ONNX export` : undefined;
  },
};

/** A reward backbone: CLIP-family ONNX towers, tokenizer and configs (src/core/models/backboneFolder.ts). */
export const BACKBONE_REPO: RepoLayout = {
  select: selectBackboneFiles,
  problem(wanted, repoAt) {
    const why = backboneRepoProblem(wanted);
    return why ? `${repoAt} is not a reward backbone repo: ${why}. Pick a repo with the ONNX export of a CLIP model` : undefined;
  },
};

/** The model cache the studio and the CLI share: `~/.cache/ddpo-studio/models`. */
export function defaultModelCacheDir(): string {
  return join(homedir(), '.cache', 'ddpo-studio', 'models');
}

/** True for a Hugging Face repo id `owner/name`: letters, digits, `-`, `_` and `.`, each part starting and ending with a letter or digit, no `--` or `..`. */
export function isHubRepoId(spec: string): boolean {
  return /^\w(?:[\w.-]{0,94}\w)?\/\w(?:[\w.-]{0,94}\w)?$/.test(spec) && !/--|\.\./.test(spec);
}

/** Local folder a repo/revision is cached in. */
export function cachedModelDir(cacheDir: string, repo: string, revision = 'main'): string {
  if (!isHubRepoId(repo)) throw new Error(`'${repo}' is not a Hugging Face repo id (owner/name)`);
  // as git names refs: never starting with a dot nor holding `..`, so `.` and `..` cannot make it the cache's own folder
  if (!/^[\w.-]+$/.test(revision) || revision.startsWith('.') || revision.includes('..')) throw new Error(`'${revision}' is not a usable revision name`);
  return join(resolve(cacheDir), repo.replace('/', '--'), revision);
}

const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** The Hub's base URL: `$HF_ENDPOINT` when set (as huggingface_hub reads it, e.g. a mirror), else https://huggingface.co. */
export function hubEndpoint(env: Record<string, string | undefined> = process.env): string {
  const raw = env.HF_ENDPOINT?.trim();
  if (!raw) return DEFAULT_ENDPOINT;
  if (!/^https?:\/\/[^/\s]+/i.test(raw)) {
    throw new Error(`HF_ENDPOINT is "${raw}", which is not an http(s) URL: set it to a Hub endpoint such as https://hf-mirror.com, or unset it to use ${DEFAULT_ENDPOINT}`);
  }
  return raw.replace(/\/+$/, '');
}

function baseOf(opts: HubDownloadOptions): string {
  return (opts.baseUrl ?? hubEndpoint()).replace(/\/+$/, '');
}

function authHeaders(token?: string): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function hubError(res: Response, what: string, repo: string): Promise<Error> {
  if (res.status === 401 || res.status === 403) {
    return new Error(`${what}: HTTP ${res.status}. ${repo} is gated or private: accept its license on the Hub, then set the HF_TOKEN environment variable to an access token (for VS Code, in the environment it starts from) and try again`);
  }
  if (res.status === 404) return new Error(`${what}: not found (HTTP 404); check the repo id and revision`);
  return new Error(`${what}: HTTP ${res.status} ${res.statusText}`);
}

/** Lists the repo's files at a revision via `GET /api/models/{repo}/revision/{rev}` (siblings). */
export async function listRepoFiles(opts: HubDownloadOptions): Promise<{ sha?: string; files: RepoFile[] }> {
  const base = baseOf(opts);
  const url = `${base}/api/models/${opts.repo}/revision/${encodeURIComponent(opts.revision ?? 'main')}?blobs=true`;
  const res = await fetch(url, { headers: authHeaders(opts.token), signal: opts.signal }).catch((e: Error & { cause?: Error }) => {
    if (opts.signal?.aborted) throw e;
    throw new Error(`Could not reach the Hub at ${base} (${e.cause?.message ?? e.message}): check the network connection${!opts.baseUrl && process.env.HF_ENDPOINT?.trim() ? ' and the HF_ENDPOINT environment variable, which set this address' : ''}`);
  });
  if (!res.ok) throw await hubError(res, `Listing ${opts.repo}@${opts.revision ?? 'main'} on ${base}`, opts.repo);
  const body = (await res.json()) as { sha?: string; siblings?: { rfilename: string; size?: number }[] };
  if (!Array.isArray(body.siblings)) throw new Error(`Hub answer for ${opts.repo} has no file list (siblings)`);
  return { sha: body.sha, files: body.siblings.map((s) => ({ path: s.rfilename, size: s.size })) };
}

// One attempt: continue `<dest>.part` from its current length with Range, then fsync it and rename it into place
// (the `.part` is written in place on purpose: it is what a later attempt resumes). `size` is the listing's size of
// the file: a reply without a length that ends early, or a `.part` longer than the file, is never committed.
async function downloadOnce(url: string, dest: string, size: number | undefined, opts: HubDownloadOptions, report: (n: number, total: number) => void): Promise<void> {
  const part = dest + '.part';
  const have = existsSync(part) ? statSync(part).size : 0;
  const commit = () => {
    const got = statSync(part).size;
    if (size !== undefined && got !== size) {
      if (got > size) unlinkSync(part); // more than the file holds: nothing in it can be trusted, start over
      throw new Error(`Download of ${url} holds ${got} bytes, not the ${size} the Hub lists`);
    }
    commitFileSync(part, dest);
  };
  const headers: Record<string, string> = { ...authHeaders(opts.token), ...(have > 0 ? { Range: `bytes=${have}-` } : {}) };
  const res = await fetch(url, { headers, signal: opts.signal });
  if (res.status === 416 && have > 0) return commit();
  if (!res.ok || !res.body) throw await hubError(res, `Downloading ${url}`, opts.repo);
  const resumed = res.status === 206;
  let done = resumed ? have : 0;
  const total = resumed ? have + Number(res.headers.get('content-length') ?? NaN) : Number(res.headers.get('content-length') ?? NaN);
  const out = createWriteStream(part, { flags: resumed ? 'a' : 'w' });
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      done += chunk.length;
      report(done, total);
    }
  } finally {
    await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
  }
  if (Number.isFinite(total) && done !== total) throw new Error(`Download of ${url} ended early (${done} of ${total} bytes)`);
  commit();
}

/**
 * Downloads the files of a Hub repo its layout names (default: a Stable Diffusion pipeline) into the cache, resuming
 * partial files; returns the model folder. The folder counts as complete only once every file is in place.
 */
export async function downloadModel(opts: HubDownloadOptions): Promise<string> {
  const revision = opts.revision ?? 'main';
  const dir = cachedModelDir(opts.cacheDir, opts.repo, revision);
  const marker = join(dir, '.ddpo-complete.json');
  const listing = await listRepoFiles(opts);
  const layout = opts.layout ?? PIPELINE_REPO;
  const wanted = layout.select(listing.files.map((f) => f.path));
  const problem = layout.problem(wanted, `${opts.repo}@${revision}`);
  if (problem) throw new Error(problem);
  const base = baseOf(opts);
  // file names come from the server: one that leads out of the model's folder (a hostile mirror) is never written
  for (const p of wanted) {
    try {
      resolveInside(dir, p);
    } catch (e) {
      if (!(e instanceof PathEscapeError)) throw e;
      throw new Error(`The file list of ${opts.repo} from ${base} names "${p}", which is outside the model's folder (${e.why}); nothing was downloaded. Check that ${base} is the Hub or a mirror you trust`);
    }
  }
  // The commit this folder's files came from: a folder begun (or finished) at another commit of the branch is fetched
  // again, since resuming would join two revisions' bytes and keeping its files would mix them (decided before the
  // disk check counts what is already here).
  const from = commitOf(join(dir, DOWNLOAD_STATE)) ?? commitOf(marker);
  if (listing.sha !== undefined && from !== undefined && from !== listing.sha) {
    for (const p of wanted) for (const f of [join(dir, p), join(dir, p) + '.part']) rmSync(f, { force: true });
    rmSync(marker, { force: true });
  }
  const sizes = new Map(listing.files.map((f) => [f.path, f.size]));
  const have = (p: string) => (existsSync(join(dir, p)) ? statSync(join(dir, p)).size : existsSync(join(dir, p + '.part')) ? statSync(join(dir, p + '.part')).size : 0);
  const total = wanted.reduce((n, p) => n + (sizes.get(p) ?? 0), 0);
  const needed = wanted.reduce((n, p) => n + Math.max(0, (sizes.get(p) ?? 0) - have(p)), 0);
  mkdirSync(dir, { recursive: true });
  if (listing.sha !== undefined) atomicWriteFileSync(join(dir, DOWNLOAD_STATE), JSON.stringify({ sha: listing.sha }) + '\n');
  const fsStats = await statfs(dir);
  const free = fsStats.bavail * fsStats.bsize;
  // Keep 256 MiB spare so the disk is not filled to the last byte.
  if (needed + 256 * 2 ** 20 > free) {
    throw new Error(`Not enough disk space in ${dir}: the model needs ${(needed / 2 ** 30).toFixed(2)} GiB more, ${(free / 2 ** 30).toFixed(2)} GiB free. Free some space or choose another model cache folder`);
  }
  let doneBefore = 0;
  for (const path of wanted) {
    const dest = join(dir, path);
    const size = sizes.get(path);
    if (existsSync(dest) && (size === undefined || statSync(dest).size === size)) { doneBefore += statSync(dest).size; continue; }
    mkdirSync(dirname(dest), { recursive: true });
    if (existsSync(dest)) unlinkSync(dest);
    // the commit the listing named, not the branch: a push during the download cannot change what arrives
    const url = `${base}/${opts.repo}/resolve/${encodeURIComponent(listing.sha ?? revision)}/${path.split('/').map(encodeURIComponent).join('/')}`;
    const report = (n: number, t: number) => opts.onProgress?.({ file: path, fileBytes: n, fileTotal: size ?? t, bytes: doneBefore + n, total });
    for (let attempt = 0; ; attempt++) {
      try {
        await downloadOnce(url, dest, size, opts, report);
        break;
      } catch (e) {
        opts.signal?.throwIfAborted();
        const retriable = !/HTTP (4\d\d)/.test((e as Error).message);
        if (!retriable || attempt >= (opts.retries ?? 3)) throw new Error(`Failed to download ${path} of ${opts.repo}: ${(e as Error).message}. Run the download again to resume`);
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
    doneBefore += statSync(dest).size;
  }
  atomicWriteFileSync(marker, JSON.stringify({ repo: opts.repo, revision, sha: listing.sha, files: wanted }, null, 1));
  return dir;
}

// Where a download records the commit it fetches from, beside its files.
const DOWNLOAD_STATE = '.ddpo-download.json';

// The `sha` a download record or completion marker names, if any.
function commitOf(file: string): string | undefined {
  try {
    const sha = (JSON.parse(readFileSync(file, 'utf8')) as { sha?: unknown }).sha;
    return typeof sha === 'string' ? sha : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a cache folder holds a finished download of `layout`'s files (its marker is written after the last file). */
export function isCompleteDownload(dir: string, layout: RepoLayout = PIPELINE_REPO): boolean {
  const marker = join(dir, '.ddpo-complete.json');
  if (!existsSync(marker)) return false;
  const files = (JSON.parse(readFileSync(marker, 'utf8')) as { files: string[] }).files;
  // a repo fetched for another layout (a pipeline, a backbone) is completed by a download, which skips what is there
  return files.every((f) => existsSync(join(dir, f))) && !layout.problem(files, dir);
}

/** Options of {@link resolveModel}. */
export type ResolveModelOptions = Omit<HubDownloadOptions, 'repo'> & {
  offline?: boolean;
  /** Hears that `spec` is not a local path and is looked up on the Hub instead. */
  onLog?: (line: string) => void;
};

/**
 * A model folder to use: a local folder as is (a local path is never looked up on the Hub); otherwise a repo id from
 * the cache when complete, else downloaded (unless offline). Errors for a missing path say both readings of it.
 */
export async function resolveModel(spec: string, opts: ResolveModelOptions): Promise<string> {
  if (existsSync(spec)) {
    if (statSync(spec).isDirectory()) return resolve(spec);
    throw new Error(`${spec} is a file, not a model folder: give the folder that holds model_index.json, unet/, text_encoder/ and vae_decoder/`);
  }
  const local = `${spec} is not a local folder (no ${resolve(spec)})`;
  if (!isHubRepoId(spec)) throw new Error(`${local}, and '${spec}' is not a Hugging Face repo id (owner/name) either: check the path`);
  opts.onLog?.(`${spec} is not a local folder; trying the Hugging Face Hub repo ${spec}`);
  const dir = cachedModelDir(opts.cacheDir, spec, opts.revision);
  if (isCompleteDownload(dir, opts.layout)) return dir;
  if (opts.offline) throw new Error(`${local}, and the Hub repo ${spec} is not completely downloaded in ${dir}, and downloads are off (offline)`);
  try {
    return await downloadModel({ ...opts, repo: spec });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw new Error(`${local}, and as a Hugging Face Hub repo: ${(e as Error).message}`);
  }
}
