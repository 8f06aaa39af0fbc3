/** What a Linux shared library says about itself: its machine, the libraries it needs, and onnxruntime's version string. */
import * as fs from 'node:fs';

/** ELF `e_machine` of x86-64. */
export const EM_X86_64 = 62;

/** The parts of an ELF shared library that decide whether and with what it loads. */
export interface ElfInfo {
  machine: number;
  /** DT_NEEDED entries: the sonames the dynamic loader must find before the library loads. */
  needed: string[];
  soname?: string;
}

interface Section { name: string; type: number; offset: number; size: number; link: number }

const SHT_DYNAMIC = 6;
const DT_NEEDED = 1;
const DT_SONAME = 14;

function readAt(fd: number, at: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const got = fs.readSync(fd, b, 0, n, at);
  return got === n ? b : b.subarray(0, got);
}

function sections(fd: number, file: string): { machine: number; list: Section[] } {
  const h = readAt(fd, 0, 64);
  if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF shared library`);
  if (h[4] !== 2 || h[5] !== 1) throw new Error(`${file} is not a 64-bit little-endian library (linux-x64 needs one)`);
  const shoff = Number(h.readBigUInt64LE(0x28));
  const shentsize = h.readUInt16LE(0x3a), shnum = h.readUInt16LE(0x3c), shstrndx = h.readUInt16LE(0x3e);
  const table = readAt(fd, shoff, shentsize * shnum);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const p = i * shentsize;
    if (p + 44 > table.length) throw new Error(`${file}: truncated section table; the file is incomplete`);
    return { nameOff: table.readUInt32LE(p), type: table.readUInt32LE(p + 4), offset: Number(table.readBigUInt64LE(p + 24)), size: Number(table.readBigUInt64LE(p + 32)), link: table.readUInt32LE(p + 40) };
  });
  const names = raw[shstrndx] ? readAt(fd, raw[shstrndx].offset, raw[shstrndx].size) : Buffer.alloc(0);
  const cstr = (b: Buffer, at: number) => b.toString('latin1', at, Math.max(at, b.indexOf(0, at)));
  return { machine: h.readUInt16LE(0x12), list: raw.map((s) => ({ ...s, name: cstr(names, s.nameOff) })) };
}

/** Reads the machine, DT_NEEDED and DT_SONAME of `file` from its section table (the file is not loaded). */
export function readElf(file: string): ElfInfo {
  const fd = fs.openSync(file, 'r');
  try {
    const { machine, list } = sections(fd, file);
    const info: ElfInfo = { machine, needed: [] };
    const dyn = list.find((s) => s.type === SHT_DYNAMIC);
    if (!dyn || !list[dyn.link]) return info;
    const entries = readAt(fd, dyn.offset, dyn.size);
    const strtab = readAt(fd, list[dyn.link].offset, list[dyn.link].size);
    const str = (at: number) => strtab.toString('latin1', at, strtab.indexOf(0, at));
    for (let p = 0; p + 16 <= entries.length; p += 16) {
      const tag = Number(entries.readBigInt64LE(p)), val = Number(entries.readBigUInt64LE(p + 8));
      if (tag === 0) break;
      if (tag === DT_NEEDED) info.needed.push(str(val));
      else if (tag === DT_SONAME) info.soname = str(val);
    }
    return info;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The onnxruntime release versions (`1.NN.P`, each NUL-terminated) in `file`'s read-only data: onnxruntime compiles its
 * ORT_VERSION string into the core and into every provider library, so a provider names the release it was built from.
 * More than one distinct version means the library cannot be told apart by this.
 */
export function readOrtVersions(file: string): string[] {
  const fd = fs.openSync(file, 'r');
  try {
    const rodata = sections(fd, file).list.find((s) => s.name === '.rodata');
    if (!rodata) return [];
    const text = readAt(fd, rodata.offset, rodata.size).toString('latin1');
    return [...new Set([...text.matchAll(/\0(1\.\d{2}\.\d{1,3})(?=\0)/g)].map((m) => m[1]))];
  } finally {
    fs.closeSync(fd);
  }
}

/** The CUDA major a provider library was built against, from the `libcudart.so.N` it needs. */
export function cudaMajorOf(info: ElfInfo): number | undefined {
  const m = info.needed.map((n) => /^libcudart\.so\.(\d+)$/.exec(n)).find((x) => x);
  return m ? Number(m[1]) : undefined;
}
