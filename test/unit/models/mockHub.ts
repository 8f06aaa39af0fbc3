/** A Hugging Face Hub stand-in on 127.0.0.1: serves model folders in the Hub's API + resolve URL layout. */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';

/** How the mock Hub behaves. */
export interface MockHubOptions {
  /** The model folder every repo id serves, except those in `repos`. */
  root: string;
  /** Other folders by repo id (`owner/name`), e.g. a reward backbone beside the pipeline. */
  repos?: Record<string, string>;
  /** Repos under the owner `gated` answer 401 unless this token is sent as `Authorization: Bearer`. */
  token?: string;
  /** A file whose first full download is cut off halfway, as a flaky connection would. */
  dropOnce?: string;
  /** A file whose first full download is sent without a length and ends cleanly halfway (a proxy that cut it short). */
  endEarlyOnce?: string;
  /** A file (or several) sent half, then the rest after `ms` (a download in progress long enough to see). */
  stall?: Stall | Stall[];
  /** The commit the listing names (default abc123); read at each listing, so a test can push a new one. */
  sha?: () => string;
  /** Extra names listed in the siblings (not downloadable), e.g. weights the pipeline must skip. */
  extraSiblings?: string[];
}

/** A file the mock Hub sends half of, then the rest after `ms`. */
export interface Stall { file: string; ms: number }

/** A running mock Hub: its base URL (for `baseUrl` or HF_ENDPOINT), every request it got, and a way to stop it. */
export interface MockHub {
  url: string;
  requests: { path: string; range?: string; auth?: string }[];
  close(): Promise<void>;
}

function listFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile()).map((f) => relative(dir, join(dir, f)));
}

/** Starts the mock Hub; repos of the owner `huge` list every file as 1 PB (for disk-space checks), of `missing` do not exist. */
export async function startMockHub(opts: MockHubOptions): Promise<MockHub> {
  const requests: MockHub['requests'] = [];
  let dropped = false, endedEarly = false;
  const rootOf = (owner: string, name: string) => opts.repos?.[`${owner}/${name}`] ?? opts.root;
  const stalls = [opts.stall ?? []].flat();
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push({ path: url.pathname, range: req.headers.range, auth: req.headers.authorization });
    if (url.pathname.startsWith('/api/models/gated/') || /^\/gated\//.test(url.pathname)) {
      if (req.headers.authorization !== `Bearer ${opts.token}`) { res.writeHead(401).end('unauthorized'); return; }
    }
    if (url.pathname.startsWith('/api/models/missing/')) { res.writeHead(404).end('Repository not found'); return; }
    const api = url.pathname.match(/^\/api\/models\/([\w.-]+)\/([\w.-]+)\/revision\/([\w.-]+)$/);
    if (api) {
      const huge = api[1] === 'huge';
      const root = rootOf(api[1], api[2]);
      const siblings = [...listFiles(root), ...(opts.extraSiblings ?? [])].map((f) => ({
        rfilename: f, size: huge ? 1e15 : existsSync(join(root, f)) ? statSync(join(root, f)).size : 10,
      }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sha: opts.sha?.() ?? 'abc123', siblings }));
      return;
    }
    const file = url.pathname.match(/^\/([\w.-]+)\/([\w.-]+)\/resolve\/[\w.-]+\/(.+)$/);
    const rel = file ? decodeURIComponent(file[3]) : '';
    if (!file || !existsSync(join(rootOf(file[1], file[2]), rel))) { res.writeHead(404).end('Entry not found'); return; }
    const data = readFileSync(join(rootOf(file[1], file[2]), rel));
    const range = req.headers.range?.match(/^bytes=(\d+)-$/);
    if (range) {
      const start = Number(range[1]);
      if (start >= data.length) { res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end(); return; }
      res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` }).end(data.subarray(start));
      return;
    }
    if (rel === opts.endEarlyOnce && !endedEarly) {
      endedEarly = true;
      res.writeHead(200).end(data.subarray(0, data.length >> 1));
      return;
    }
    res.writeHead(200, { 'content-length': data.length });
    if (rel === opts.dropOnce && !dropped) {
      dropped = true;
      res.write(data.subarray(0, data.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    const stall = stalls.find((s) => s.file === rel);
    if (stall) {
      res.write(data.subarray(0, data.length >> 1));
      setTimeout(() => res.end(data.subarray(data.length >> 1)), stall.ms);
      return;
    }
    res.end(data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
