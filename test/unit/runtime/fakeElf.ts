/** A minimal x86-64 ELF file with a dynamic section and read-only data: enough for readelf and for src/core/runtime/elf.ts. */

/** Options of {@link fakeElf}. */
export interface FakeElf {
  needed?: string[];
  soname?: string;
  /** NUL-terminated strings placed in .rodata, e.g. onnxruntime's version. */
  strings?: string[];
  machine?: number;
}

/** The bytes of an ELF64 little-endian shared object with sections .dynstr, .dynamic, .rodata and .shstrtab. */
export function fakeElf(o: FakeElf = {}): Buffer {
  const strs = ['', ...(o.needed ?? []), ...(o.soname ? [o.soname] : [])];
  const dynstr = Buffer.from(strs.join('\0') + '\0', 'latin1');
  const offsetOf = (s: string) => dynstr.indexOf(Buffer.from(`\0${s}\0`, 'latin1')) + 1;
  const entries: [number, number][] = [...(o.needed ?? []).map((n): [number, number] => [1, offsetOf(n)]), ...(o.soname ? [[14, offsetOf(o.soname)] as [number, number]] : []), [0, 0]];
  const dynamic = Buffer.alloc(16 * entries.length);
  entries.forEach(([tag, val], i) => { dynamic.writeBigInt64LE(BigInt(tag), 16 * i); dynamic.writeBigUInt64LE(BigInt(val), 16 * i + 8); });
  const rodata = Buffer.from(`\0padding\0${(o.strings ?? []).join('\0')}\0`, 'latin1');
  const names = ['', '.dynstr', '.dynamic', '.rodata', '.shstrtab'];
  const shstrtab = Buffer.from(names.join('\0') + '\0', 'latin1');
  const bodies = [Buffer.alloc(0), dynstr, dynamic, rodata, shstrtab];
  const types = [0, 3, 6, 1, 3];
  let at = 64;
  const offsets = bodies.map((b) => { const p = at; at += b.length; return p; });
  const shoff = at;
  const head = Buffer.alloc(64);
  head.writeUInt32BE(0x7f454c46, 0); head[4] = 2; head[5] = 1; head[6] = 1;
  head.writeUInt16LE(3, 0x10); head.writeUInt16LE(o.machine ?? 62, 0x12); head.writeUInt32LE(1, 0x14);
  head.writeBigUInt64LE(BigInt(shoff), 0x28); head.writeUInt16LE(64, 0x34); head.writeUInt16LE(64, 0x3a);
  head.writeUInt16LE(names.length, 0x3c); head.writeUInt16LE(names.length - 1, 0x3e);
  const table = Buffer.alloc(64 * names.length);
  names.forEach((n, i) => {
    const p = 64 * i;
    table.writeUInt32LE(i ? shstrtab.indexOf(Buffer.from(`\0${n}\0`, 'latin1')) + 1 : 0, p);
    table.writeUInt32LE(types[i], p + 4);
    table.writeBigUInt64LE(BigInt(offsets[i]), p + 24);
    table.writeBigUInt64LE(BigInt(bodies[i].length), p + 32);
    if (types[i] === 6) { table.writeUInt32LE(1, p + 40); table.writeBigUInt64LE(16n, p + 56); }
  });
  return Buffer.concat([head, ...bodies, table]);
}

/** A fake CUDA provider of onnxruntime `version` built for CUDA `cuda`. */
export function fakeCudaProvider(version: string, cuda = 13): Buffer {
  return fakeElf({ needed: [`libcublasLt.so.${cuda}`, `libcublas.so.${cuda}`, 'libcurand.so.10', `libcudart.so.${cuda}`, 'libcuda.so.1', 'libstdc++.so.6', 'libc.so.6'], strings: ['Failed to get device id.', version, 'cudaSetDevice'] });
}

/** A fake libonnxruntime_providers_shared.so (no version string, as the real one). */
export function fakeSharedProvider(): Buffer {
  return fakeElf({ needed: ['libstdc++.so.6', 'libc.so.6'], soname: 'libonnxruntime_providers_shared.so' });
}
