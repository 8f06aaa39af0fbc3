/** Extracts chosen files from a tar or tar.gz archive (an npm package, onnxruntime's release tarballs) as it streams. */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

const BLOCK = 512;

/** Size field: octal text, or base-256 (high bit set) for entries over 8 GiB. */
function entrySize(h: Buffer): number {
  if (h[124] & 0x80) return Number(h.readBigUInt64BE(128));
  return parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
}

function headerName(h: Buffer): string {
  const field = (a: number, b: number) => h.toString('utf8', a, b).replace(/\0.*$/s, '');
  const prefix = h.toString('latin1', 257, 262) === 'ustar' ? field(345, 500) : '';
  return prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
}

// The pax extended header's `path` record, e.g. "27 path=package/a/long/name\n".
function paxPath(body: Buffer): string | undefined {
  return /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1];
}

/**
 * Streams `file` (gzipped when its first bytes say so) and writes each regular file whose path `choose` maps to a
 * destination there; returns the archive paths written. GNU long names and pax `path` records are honoured.
 */
export async function extractFromTar(file: string, choose: (name: string) => string | undefined): Promise<string[]> {
  const magic = Buffer.alloc(2);
  const fd0 = fs.openSync(file, 'r');
  try { fs.readSync(fd0, magic, 0, 2, 0); } finally { fs.closeSync(fd0); }
  const raw = fs.createReadStream(file);
  const stream = magic[0] === 0x1f && magic[1] === 0x8b ? raw.pipe(zlib.createGunzip()) : raw;
  const written: string[] = [];
  let pending: Buffer = Buffer.alloc(0);
  // the entry being read: bytes of its body still to come, and where they go
  let left = 0, pad = 0, out: number | undefined, meta: Buffer[] | undefined, metaKind = '';
  let longName: string | undefined;
  for await (const chunk of stream) {
    pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
    let p = 0;
    for (;;) {
      if (left > 0 || pad > 0) {
        const take = Math.min(left, pending.length - p);
        if (take > 0) {
          // writeFileSync writes the rest of what a nearly full disk took only part of, or throws
          if (out !== undefined) fs.writeFileSync(out, pending.subarray(p, p + take));
          else meta?.push(pending.subarray(p, p + take));
          p += take; left -= take;
        }
        if (left > 0) break;
        if (out !== undefined) { fs.closeSync(out); out = undefined; }
        if (meta) {
          const body = Buffer.concat(meta);
          longName = metaKind === 'L' ? body.toString('utf8').replace(/\0.*$/s, '') : paxPath(body) ?? longName;
          meta = undefined;
        }
        const skip = Math.min(pad, pending.length - p);
        p += skip; pad -= skip;
        if (pad > 0) break;
      }
      if (pending.length - p < BLOCK) break;
      const h = pending.subarray(p, p + BLOCK);
      p += BLOCK;
      if (h.every((b) => b === 0)) continue;
      const size = entrySize(h), type = String.fromCharCode(h[156] || 48);
      left = size; pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (type === 'L' || type === 'x') { meta = []; metaKind = type; continue; }
      const name = longName ?? headerName(h);
      longName = undefined;
      const dest = type === '0' || type === '7' ? choose(name) : undefined;
      if (dest) {
        out = fs.openSync(dest, 'w');
        written.push(name);
        if (size === 0) { fs.closeSync(out); out = undefined; }
      }
    }
    pending = pending.subarray(p);
  }
  if (out !== undefined) fs.closeSync(out);
  if (left > 0) throw new Error(`${file} ends inside an entry; the archive is truncated — download it again`);
  return written;
}

