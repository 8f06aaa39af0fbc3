/** Reads single entries out of a ZIP file (a .nupkg, a torch.save checkpoint) without loading the whole archive: stored and deflated entries. */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

/** One entry of the central directory. */
export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

function read(fd: number, at: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const got = fs.readSync(fd, b, 0, n, at);
  if (got !== n) throw new Error(`short read at ${at}`);
  return b;
}

/** Lists the entries of the ZIP archive `file` (ZIP64 included); errors say the file is not a ZIP. */
export function listZip(file: string): ZipEntry[] {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const tailLen = Math.min(size, 22 + 65535);
    const tail = read(fd, size - tailLen, tailLen);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0) throw new Error(`${file} is not a ZIP archive (no end-of-central-directory record); the download may be truncated`);
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (cdOffset === 0xffffffff || count === 0xffff) {
      const loc = eocd - 20; // ZIP64 locator sits right before the classic record
      if (loc < 0 || tail.readUInt32LE(loc) !== 0x07064b50) throw new Error(`${file}: ZIP64 archive without a ZIP64 locator`);
      const rec = read(fd, Number(tail.readBigUInt64LE(loc + 8)), 56);
      count = Number(rec.readBigUInt64LE(32));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
    }
    const cd = read(fd, cdOffset, cdSize);
    const out: ZipEntry[] = [];
    for (let p = 0, i = 0; i < count; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: corrupt central directory at entry ${i}`);
      const nameLen = cd.readUInt16LE(p + 28), extraLen = cd.readUInt16LE(p + 30), commentLen = cd.readUInt16LE(p + 32);
      const e: ZipEntry = {
        name: cd.toString('utf8', p + 46, p + 46 + nameLen), method: cd.readUInt16LE(p + 10),
        compressedSize: cd.readUInt32LE(p + 20), size: cd.readUInt32LE(p + 24), localHeaderOffset: cd.readUInt32LE(p + 42),
      };
      if (e.compressedSize === 0xffffffff || e.size === 0xffffffff || e.localHeaderOffset === 0xffffffff) zip64Sizes(e, cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen));
      out.push(e);
      p += 46 + nameLen + extraLen + commentLen;
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

// The ZIP64 extra field (id 1) holds, in order, only the sizes/offset whose classic field is 0xFFFFFFFF.
function zip64Sizes(e: ZipEntry, extra: Buffer): void {
  for (let p = 0; p + 4 <= extra.length;) {
    const id = extra.readUInt16LE(p), len = extra.readUInt16LE(p + 2);
    if (id === 1) {
      let q = p + 4;
      const next = () => { const v = Number(extra.readBigUInt64LE(q)); q += 8; return v; };
      if (e.size === 0xffffffff) e.size = next();
      if (e.compressedSize === 0xffffffff) e.compressedSize = next();
      if (e.localHeaderOffset === 0xffffffff) e.localHeaderOffset = next();
      return;
    }
    p += 4 + len;
  }
}

/** The uncompressed bytes of `entry` of `file`. */
export function readZipEntry(file: string, entry: ZipEntry): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const head = read(fd, entry.localHeaderOffset, 30);
    if (head.readUInt32LE(0) !== 0x04034b50) throw new Error(`${file}: bad local header for ${entry.name}`);
    const data = read(fd, entry.localHeaderOffset + 30 + head.readUInt16LE(26) + head.readUInt16LE(28), entry.compressedSize);
    if (entry.method === 0) return data;
    if (entry.method === 8) return inflateAtMost(data, entry, file);
    throw new Error(`${file}: ${entry.name} uses compression method ${entry.method}, which this reader does not support`);
  } finally {
    fs.closeSync(fd);
  }
}

// A deflated entry inflates to at most the size its directory gives, so a crafted archive (a "zip bomb") is refused
// before it fills memory.
function inflateAtMost(data: Buffer, entry: ZipEntry, file: string): Buffer {
  try {
    return zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, entry.size) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new Error(`${file}: ${entry.name} inflates to more than the ${entry.size} bytes its directory gives; the archive is corrupt or crafted`);
    throw e;
  }
}
