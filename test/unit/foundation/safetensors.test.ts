// A .safetensors file is read from its own header: a header that is JSON but not the format (a LoRA, a reward head or
// a checkpoint damaged or made by hand) is an error naming the file and the tensor, never a TypeError or wrong bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSafetensors, readSafetensors, readSafetensorsWithMetadata } from '../../../src/core/safetensors';

// A file with the given header and 16 bytes of data.
function withHeader(header: unknown): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + 16);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

test('a well-formed file reads back what was written, metadata included', () => {
  const bytes = encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) } }, { format: 'pt' });
  const { tensors, metadata } = readSafetensorsWithMetadata(bytes);
  assert.deepEqual([...tensors.get('w')!.data as Float32Array], [1, 2, 3, 4]);
  assert.deepEqual(metadata, { format: 'pt' });
});

test('a header that is JSON but not a safetensors header names the file and the tensor', () => {
  const cases: [unknown, RegExp][] = [
    [null, /safetensors buffer has a corrupt safetensors header \(not a JSON object\)/],
    [[1, 2], /not a JSON object/],
    [{ w: null }, /tensor w has no description \(dtype, shape, data_offsets\); the file is corrupt/],
    [{ w: { dtype: 'constructor', shape: [1], data_offsets: [0, 4] } }, /tensor w has unsupported dtype constructor/],
    [{ w: { dtype: 'F32', data_offsets: [0, 4] } }, /tensor w has no shape of whole non-negative sizes/],
    [{ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, /tensor w has no shape/],
    [{ w: { dtype: 'F32', shape: [1] } }, /tensor w has no data_offsets \[begin, end\]/],
    [{ w: { dtype: 'F32', shape: [1], data_offsets: [-8, -4] } }, /tensor w has no data_offsets/],
    [{ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, __metadata__: { n: 1 } }, /its __metadata__ is not a map of strings/],
    [{ w: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, /tensor w is truncated or its offsets are wrong/],
  ];
  for (const [header, want] of cases) assert.throws(() => readSafetensors(withHeader(header)), want, JSON.stringify(header));
  assert.deepEqual([...readSafetensors(withHeader({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, __metadata__: null })).keys()], ['w']);
});

test('a size or offset that is a fraction is refused by the tensor\'s name, never read as if it were whole', () => {
  // each byte count still adds up, so only the whole-number check stands between these headers and a read
  const cases: [unknown, RegExp][] = [
    [{ t: { dtype: 'F32', shape: [0.5], data_offsets: [0, 2] } }, /tensor t has no shape of whole non-negative sizes; the file is corrupt/],
    [{ t: { dtype: 'F32', shape: [0.5, 2], data_offsets: [0, 4] } }, /tensor t has no shape of whole non-negative sizes; the file is corrupt/],
    [{ t: { dtype: 'F32', shape: [1], data_offsets: [0.5, 4.5] } }, /tensor t has no data_offsets \[begin, end\]; the file is corrupt/],
  ];
  for (const [header, want] of cases) assert.throws(() => readSafetensors(withHeader(header)), want, JSON.stringify(header));
});
