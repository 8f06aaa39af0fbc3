import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isTorchCheckpointPath, readTorchCheckpoint, readWeightsFile } from '../../../src/core/torchLoad';
import { encodeSafetensors, readSafetensors, type SafeTensor } from '../../../src/core/safetensors';
import { OP, Pickle, stateDictPickle, torchArchive, writeTensor, writeTorchFile, zipArchive, type StorageSpec, type TensorSpec } from './torchSave';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchload-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (ext = '.pth') => path.join(dir, `f${n++}${ext}`);
const writeBytes = (bytes: Uint8Array, ext = '.pth') => { const f = file(ext); fs.writeFileSync(f, bytes); return f; };
/** A checkpoint whose data.pkl is `pkl` (plus any storages it names). */
const withPickle = (pkl: Uint8Array, storages: StorageSpec[] = []) => writeBytes(torchArchive(pkl, storages));
const plain = (t: SafeTensor) => ({ dtype: t.dtype, shape: t.shape, data: Array.from(t.data as ArrayLike<number | bigint>) });

const f32 = (key: string, xs: number[]): StorageSpec => ({ key, dtype: 'F32', data: Float32Array.from(xs) });

test('a state dict of several dtypes and shapes reads as the same tensors the safetensors reader gives', () => {
  const tensors: Record<string, SafeTensor> = {
    'layers.0.weight': { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 4, 5, 6e-8) },
    'layers.0.bias': { dtype: 'F16', shape: [4], data: Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001) },
    'norm.scale': { dtype: 'BF16', shape: [2, 2], data: Uint16Array.of(0x3f80, 0x4000, 0xbf80, 0x0000) },
    'proj.weight': { dtype: 'F64', shape: [3, 1, 1], data: Float64Array.of(Math.PI, -1e300, 0.1) },
    'steps': { dtype: 'I64', shape: [2], data: BigInt64Array.of(-(2n ** 40n), 7n) },
    'ids': { dtype: 'I32', shape: [2, 2], data: Int32Array.of(-1, 2, 2 ** 30, 0) },
    'small': { dtype: 'I16', shape: [1], data: Int16Array.of(-300) },
    'tiny': { dtype: 'I8', shape: [2], data: Int8Array.of(-128, 127) },
    'pixels': { dtype: 'U8', shape: [5], data: Uint8Array.of(0, 1, 128, 254, 255) },
    'mask': { dtype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) },
    'temperature': { dtype: 'F32', shape: [], data: Float32Array.of(0.07) },
    'empty': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
  const specs: Record<string, TensorSpec> = {};
  Object.entries(tensors).forEach(([k, t], i) => (specs[k] = { storage: { key: String(i), dtype: t.dtype, data: t.data }, shape: t.shape }));
  for (const deflate of [false, true]) {
    const f = file();
    writeTorchFile(f, specs, { deflate });
    const got = readTorchCheckpoint(f);
    const want = readSafetensors(encodeSafetensors(tensors));
    assert.deepEqual([...got.keys()], Object.keys(tensors), 'in the order of the state dict');
    for (const [k, t] of want) assert.deepEqual(plain(got.get(k)!), plain(t), k);
  }
});

test('the pickle writer matches the bytes CPython pickles for torch reduce tuples, and that pickle reads back', () => {
  // CPython 3.11's pickle.Pickler(protocol=2) on an OrderedDict of three tensors reduced as Tensor.__reduce_ex__ does
  // (w: 2x3 float32, wt: its transpose, b: 2 halves at offset 1), with _metadata, and storages as persistent ids.
  const cpython = Buffer.from(
    '800263636f6c6c656374696f6e730a4f726465726564446963740a71002952710128580100000077710263746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a71032828580700000073746f72616765710463746f7263680a466c6f617453746f726167650a71055801000000307106580300000063707571074b06747108514b004b024b038671094b034b0186710a8968002952710b74710c52710d58020000007774710e6803282868046805680668074b0674710f514b004b034b028671104b014b0386711189680029527112747113527114580100000062711568032828680463746f7263680a48616c6653746f726167650a7116580100000031711768074b03747118514b014b028571194b0185711a8968002952711b74711c52711d757d711e58090000005f6d65746164617461711f680029527120580000000071217d7122580700000076657273696f6e71234b01737373622e',
    'hex');
  const s0 = f32('0', [0, 1, 2, 3, 4, 5]);
  const s1: StorageSpec = { key: '1', dtype: 'F16', data: Uint16Array.of(0x3c00, 0x4000, 0x4200) };
  const specs = { w: { storage: s0, shape: [2, 3] }, wt: { storage: s0, shape: [3, 2], stride: [1, 3] }, b: { storage: s1, shape: [2], offset: 1 } };
  assert.ok(stateDictPickle(specs).equals(cpython));
  const got = readTorchCheckpoint(withPickle(cpython, [s0, s1]));
  assert.deepEqual(plain(got.get('w')!), { dtype: 'F32', shape: [2, 3], data: [0, 1, 2, 3, 4, 5] });
  assert.deepEqual(plain(got.get('wt')!), { dtype: 'F32', shape: [3, 2], data: [0, 3, 1, 4, 2, 5] });
  assert.deepEqual(plain(got.get('b')!), { dtype: 'F16', shape: [2], data: [0x4000, 0x4200] });
});

test('non-contiguous views are materialised: a transpose, a column with an offset, a strided slice of a 3-d storage', () => {
  const s = f32('0', Array.from({ length: 24 }, (_, i) => i));
  const f = file();
  writeTorchFile(f, {
    t: { storage: s, shape: [4, 6], stride: [1, 4] },
    col: { storage: s, shape: [4], stride: [6], offset: 2 },
    cube: { storage: s, shape: [2, 2, 2], stride: [12, 1, 3], offset: 1 },
    row: { storage: s, shape: [1, 6], stride: [999, 1], offset: 18 },
  });
  const got = readTorchCheckpoint(f);
  assert.deepEqual(plain(got.get('t')!).data.slice(0, 8), [0, 4, 8, 12, 16, 20, 1, 5]);
  assert.deepEqual(plain(got.get('col')!).data, [2, 8, 14, 20]);
  assert.deepEqual(plain(got.get('cube')!).data, [1, 4, 2, 5, 13, 16, 14, 17]);
  assert.deepEqual(plain(got.get('row')!), { dtype: 'F32', shape: [1, 6], data: [18, 19, 20, 21, 22, 23] });
});

test('two tensors on one storage each get their own copy of their elements', () => {
  const s = f32('0', [1, 2, 3, 4, 5, 6]);
  const f = file();
  writeTorchFile(f, { a: { storage: s, shape: [2, 2] }, b: { storage: s, shape: [2], offset: 4 } });
  const got = readTorchCheckpoint(f);
  assert.deepEqual(plain(got.get('a')!).data, [1, 2, 3, 4]);
  assert.deepEqual(plain(got.get('b')!).data, [5, 6]);
  (got.get('a')!.data as Float32Array)[0] = 99;
  assert.equal((got.get('b')!.data as Float32Array)[0], 5);
});

test('a view that reads past its storage, or a storage of the wrong size, is an error naming the file', () => {
  const s = f32('0', [1, 2, 3, 4]);
  const f = file();
  writeTorchFile(f, { a: { storage: s, shape: [2, 2], offset: 1 } });
  assert.throws(() => readTorchCheckpoint(f), (e: Error) => e.message.startsWith(f) && /shape \[2,2\] reads past the end of storage 0/.test(e.message));
  const p = new Pickle().proto().op(OP.EMPTY_DICT).put();
  p.str('a'); writeTensor(p, { storage: f32('0', [1, 2, 3]), shape: [3] }); p.op(OP.SETITEM).stop();
  const g = withPickle(p.bytes(), [f32('0', [1, 2])]);
  assert.throws(() => readTorchCheckpoint(g), /storage data\/0 holds 8 bytes, not the 3 F32 elements/);
  assert.throws(() => readTorchCheckpoint(withPickle(p.bytes(), [])), /has no data\/0 for a storage its pickle names/);
});

/** A pickle that calls module.name(...args) the way an attacker would: GLOBAL, an argument tuple, REDUCE. */
function callPickle(module: string, name: string, args: string[]): Buffer {
  const p = new Pickle().proto().global(module, name);
  p.tuple(args.map((a) => () => p.str(a)));
  return p.op(OP.REDUCE).stop().bytes();
}

test('a global outside the allowlist is refused by name, with the file and the way to safetensors', () => {
  for (const [mod, name] of [['os', 'system'], ['builtins', 'eval'], ['__builtin__', 'getattr'], ['numpy.core.multiarray', '_reconstruct'], ['posix', 'system'], ['subprocess', 'Popen'], ['torch.nn.modules.linear', 'Linear'], ['torch._utils', '_rebuild_qtensor']]) {
    const f = withPickle(callPickle(mod, name, ['x']));
    assert.throws(() => readTorchCheckpoint(f), (e: Error) => {
      assert.ok(e.message.startsWith(`${f}: the pickle names the global ${mod}.${name}, which a weights-only checkpoint may not use`), e.message);
      assert.match(e.message, /nothing in the file was run\. Convert it to safetensors/);
      return true;
    });
  }
});

// The allowlist is the guard, not the REDUCE rule behind it: a name outside it is refused where it appears, even when
// nothing calls it, so a file that names getattr or exec never loads as if it were weights.
test('a global outside the allowlist is refused even when it is never called, beside a valid tensor', () => {
  const names = ['builtins.getattr', 'builtins.setattr', 'builtins.__import__', 'builtins.exec', 'builtins.eval', 'builtins.open', 'os.system', 'posix.system', 'nt.system',
    'subprocess.Popen', 'runpy._run_code', 'pickle.loads', 'functools.partial', 'operator.attrgetter', 'torch.load', 'torch.storage._load_from_bytes', 'numpy.core.multiarray._reconstruct'];
  for (const name of names) {
    const dot = name.lastIndexOf('.');
    const p = new Pickle().proto().orderedDict();
    p.op(OP.MARK).str('w');
    writeTensor(p, { storage: f32('0', [1]), shape: [1] });
    p.str('x').global(name.slice(0, dot), name.slice(dot + 1)).op(OP.SETITEMS).stop();
    const f = withPickle(p.bytes(), [f32('0', [1])]);
    assert.throws(() => readTorchCheckpoint(f), (e: Error) => e.message.startsWith(`${f}: the pickle names the global ${name}, which a weights-only checkpoint may not use`), name);
  }
});

test('a refused file runs nothing: globals that would write a file if called leave no file behind', () => {
  const marker = path.join(dir, 'pwned');
  const attacks = [
    callPickle('os', 'system', [`touch ${marker}`]),
    callPickle('builtins', 'open', [marker, 'w']),
    callPickle('subprocess', 'check_call', ['touch', marker]),
    // the same through STACK_GLOBAL, and hidden behind a valid state dict entry
    new Pickle().proto().str('os').str('system').op(OP.STACK_GLOBAL).str(`touch ${marker}`).op(OP.TUPLE1).op(OP.REDUCE).stop().bytes(),
  ];
  const hidden = new Pickle().proto().orderedDict();
  hidden.op(OP.MARK).str('w'); writeTensor(hidden, { storage: f32('0', [1]), shape: [1] });
  hidden.str('x').global('os', 'system').str(`touch ${marker}`).op(OP.TUPLE1).op(OP.REDUCE).op(OP.SETITEMS).stop();
  attacks.push(hidden.bytes());
  for (const pkl of attacks) {
    const f = withPickle(pkl, [f32('0', [1])]);
    assert.throws(() => readTorchCheckpoint(f), /global (os\.system|builtins\.open|subprocess\.check_call).*nothing in the file was run/);
    assert.equal(fs.existsSync(marker), false);
  }
});

test('each opcode outside the weights-only set is refused by name before it has any effect', () => {
  const cases: [number, string, number[]][] = [
    [0x69, 'INST', [...Buffer.from('os\nsystem\n')]], [0x6f, 'OBJ', []], [0x81, 'NEWOBJ', []], [0x92, 'NEWOBJ_EX', []],
    [0x82, 'EXT1', [1]], [0x83, 'EXT2', [1, 0]], [0x84, 'EXT4', [1, 0, 0, 0]], [0x50, 'PERSID', [...Buffer.from('0\n')]],
    [0x53, 'STRING', [...Buffer.from("'x'\n")]], [0x49, 'INT', [...Buffer.from('1\n')]], [0x46, 'FLOAT', []],
    [0x42, 'BINBYTES', [1, 0, 0, 0, 0]], [0x8f, 'EMPTY_SET', []], [0x91, 'FROZENSET', []], [0x32, 'DUP', []],
    [0x30, 'POP', []], [0x8b, 'LONG4', []], [0x97, 'NEXT_BUFFER', []], [0x96, 'BYTEARRAY8', []],
  ];
  for (const [code, name, payload] of cases) {
    const f = withPickle(new Pickle().proto().op(OP.NONE).op(code, payload).stop().bytes());
    assert.throws(() => readTorchCheckpoint(f), (e: Error) => e.message.startsWith(`${f}: pickle opcode ${name} (0x${code.toString(16)}) at byte 3 is not allowed`) && /nothing in the file was run\. Convert it to safetensors/.test(e.message));
  }
  assert.throws(() => readTorchCheckpoint(withPickle(Buffer.from([0x80, 2, 0xff]))), /opcode 0xff, which is no pickle opcode/);
});

test('allowlisted names are only used as torch uses them', () => {
  const storage = f32('0', [1]);
  const refused = (pkl: Buffer, re: RegExp) => assert.throws(() => readTorchCheckpoint(withPickle(pkl, [storage])), re);
  refused(callPickle('torch', 'FloatStorage', ['x']), /REDUCE calls torch\.FloatStorage with arguments, which a weights-only checkpoint may not call/);
  refused(callPickle('collections', 'OrderedDict', ['x']), /REDUCE calls collections\.OrderedDict with arguments/);
  refused(new Pickle().proto().op(OP.EMPTY_DICT).op(OP.EMPTY_DICT).op(OP.BUILD).stop().bytes(), /BUILD sets the state of a dict; only an OrderedDict's attributes may be set/);
  refused(new Pickle().proto().global('torch', 'float32').op(OP.EMPTY_DICT).op(OP.BUILD).stop().bytes(), /BUILD sets the state of a torch\.float32/);
  refused(new Pickle().proto().str('module').str('x').op(OP.TUPLE2).op(OP.BINPERSID).stop().bytes(), /BINPERSID loads a tuple, not \('storage', <storage type>, key, location, numel\)/);
  const wrongType = new Pickle().proto();
  wrongType.tuple([() => wrongType.str('storage'), () => wrongType.global('torch', 'float32'), () => wrongType.str('0'), () => wrongType.str('cpu'), () => wrongType.int(1)]);
  refused(wrongType.op(OP.BINPERSID).stop().bytes(), /BINPERSID loads a storage of type torch\.float32/);
  refused(new Pickle().proto().op(OP.EMPTY_LIST).str('k').op(OP.NONE).op(OP.SETITEM).stop().bytes(), /opcode SETITEM sets an item on a list \(only dicts may be filled\)/);
  refused(new Pickle().proto().op(OP.EMPTY_DICT).op(OP.NONE).op(OP.APPEND).stop().bytes(), /opcode APPEND appends to a dict/);
  const hooked = new Pickle().proto().op(OP.EMPTY_DICT).str('w');
  hooked.global('torch._utils', '_rebuild_tensor_v2');
  hooked.tuple([
    () => { hooked.tuple([() => hooked.str('storage'), () => hooked.global('torch', 'FloatStorage'), () => hooked.str('0'), () => hooked.str('cpu'), () => hooked.int(1)]); hooked.op(OP.BINPERSID); },
    () => hooked.int(0), () => hooked.ints([1]), () => hooked.ints([1]), () => hooked.bool(false),
    () => hooked.op(OP.EMPTY_DICT).str('h').op(OP.NONE).op(OP.SETITEM),
  ]);
  refused(hooked.op(OP.REDUCE).op(OP.SETITEM).stop().bytes(), /a tensor carries backward hooks or metadata/);
});

test('torch.nn.Parameter, nested dicts, protocol-4 framing and dtype globals read; non-tensor values are left out', () => {
  const p = new Pickle().proto(4);
  p.op(OP.FRAME, [0, 0, 0, 0, 0, 0, 0, 0]).op(OP.EMPTY_DICT).op(OP.MEMOIZE).op(OP.MARK);
  p.op(OP.SHORT_BINUNICODE, [5], Buffer.from('epoch')).op(OP.MEMOIZE).int(70000);
  p.str('dtype').op(OP.SHORT_BINUNICODE, [5], Buffer.from('torch')).op(OP.SHORT_BINUNICODE, [7], Buffer.from('float16')).op(OP.STACK_GLOBAL);
  p.str('lr').op(OP.BINFLOAT, Buffer.from([0x3f, 0x50, 0x62, 0x4d, 0xd2, 0xf1, 0xa9, 0xfc]));
  p.str('big').op(OP.LONG1, [9], [0, 0, 0, 0, 0, 0, 0, 0, 1]);
  p.str('names').op(OP.EMPTY_LIST).op(OP.MARK).str('a').str('b').op(OP.APPENDS).str('c').op(OP.APPEND);
  p.op(OP.BINUNICODE8, [10, 0, 0, 0, 0, 0, 0, 0], Buffer.from('state_dict')).op(OP.EMPTY_DICT).put();
  p.str('head.w').global('torch._utils', '_rebuild_parameter');
  p.tuple([() => writeTensor(p, { storage: f32('0', [1, 2]), shape: [2] }), () => p.bool(true), () => p.orderedDict()]);
  p.op(OP.REDUCE).op(OP.SETITEM);
  p.op(OP.SETITEMS).stop();
  const got = readTorchCheckpoint(withPickle(p.bytes(), [f32('0', [1, 2])]));
  assert.deepEqual([...got.keys()], ['state_dict.head.w']);
  assert.deepEqual(plain(got.get('state_dict.head.w')!), { dtype: 'F32', shape: [2], data: [1, 2] });
});

test('a dict that holds itself is walked once', () => {
  const p = new Pickle().proto().op(OP.EMPTY_DICT).put();
  p.str('self').op(OP.BINGET, [0]).op(OP.SETITEM).str('w');
  writeTensor(p, { storage: f32('0', [3]), shape: [1] });
  p.op(OP.SETITEM).stop();
  assert.deepEqual([...readTorchCheckpoint(withPickle(p.bytes(), [f32('0', [3])])).keys()], ['w']);
});

test('a checkpoint that is not a state dict says what it is', () => {
  const list = new Pickle().proto().op(OP.EMPTY_LIST).stop().bytes();
  assert.throws(() => readTorchCheckpoint(withPickle(list)), /holds a list, not a state dict \(a dict of tensors\): save model\.state_dict\(\) instead/);
  assert.throws(() => readTorchCheckpoint(withPickle(new Pickle().proto().op(OP.EMPTY_DICT).stop().bytes())), /holds no tensors/);
  const ts = writeBytes(zipArchive([['m/data.pkl', list], ['m/constants.pkl', list], ['m/code/__torch__/m.py', Buffer.from('class M')]]));
  assert.throws(() => readTorchCheckpoint(ts), /is a TorchScript module \(torch\.jit\.save\), not a state dict/);
  assert.throws(() => readTorchCheckpoint(writeBytes(zipArchive([['readme.txt', Buffer.from('hi')]]))), /ZIP archive without <archive>\/data\.pkl, so not a torch\.save checkpoint/);
});

test('a deflated pickle that inflates past the size its directory gives is refused before it fills memory', () => {
  // 16 MiB of zeros deflate to a few KB; the directory then claims 100 bytes, as a crafted archive would
  const zip = zipArchive([['m/data.pkl', new Uint8Array(16 << 20)]], true);
  zip.writeUInt32LE(100, zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) + 24);
  assert.throws(() => readTorchCheckpoint(writeBytes(zip)), /m\/data\.pkl \(.*inflates to more than the 100 bytes its directory gives; the archive is corrupt or crafted\); the file is damaged/);
});

test('big-endian checkpoints are refused; one without a byteorder record is read as little-endian', () => {
  const specs = { w: { storage: f32('0', [1.5]), shape: [1] } };
  const f = file();
  writeTorchFile(f, specs, { byteorder: 'big' });
  assert.throws(() => readTorchCheckpoint(f), /was saved on a big-endian machine; only little-endian checkpoints are read/);
  const g = file();
  writeTorchFile(g, specs, { byteorder: null, archive: 'aesthetic_head' });
  assert.deepEqual(plain(readTorchCheckpoint(g).get('w')!).data, [1.5]);
});

test('a truncated or corrupt archive or pickle is an error naming the file, never tensors', () => {
  const specs = { w: { storage: f32('0', Array.from({ length: 64 }, (_, i) => i)), shape: [8, 8] } };
  const whole = torchArchive(stateDictPickle(specs), [specs.w.storage]);
  const deflated = torchArchive(stateDictPickle(specs), [specs.w.storage], { deflate: true });
  const damaged = (bytes: Buffer, re: RegExp) => {
    const f = writeBytes(bytes);
    assert.throws(() => readTorchCheckpoint(f), (e: Error) => e.message.startsWith(f) && re.test(e.message));
  };
  damaged(whole.subarray(0, whole.length >> 1), /is a damaged PyTorch checkpoint \(.*no end-of-central-directory record.*\); download it again/);
  damaged(whole.subarray(0, 3), /is not a PyTorch checkpoint/);
  const cd = Buffer.from(whole);
  cd.writeUInt32LE(0xdeadbeef, cd.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])));
  damaged(cd, /damaged PyTorch checkpoint .*corrupt central directory/);
  const local = Buffer.from(whole);
  local.writeUInt32LE(0, local.indexOf(Buffer.from('archive/data/0')) - 30);
  damaged(local, /cannot read archive\/data\/0 \(.*bad local header.*\); the file is damaged or truncated: download it again/);
  const body = Buffer.from(deflated);
  body.fill(0xff, body.indexOf(Buffer.from('archive/data/0')) + 14, body.indexOf(Buffer.from('archive/data/0')) + 30);
  damaged(body, /cannot read archive\/data\/0 \(.+\); the file is damaged or truncated: download it again/);
  const pkl = stateDictPickle(specs);
  for (const cut of [1, 40, pkl.length - 1]) {
    damaged(torchArchive(pkl.subarray(0, cut), [specs.w.storage]), /its pickle \(data\.pkl\) is corrupt \(.* at byte \d+\); download the file again/);
  }
  damaged(torchArchive(Buffer.from([0x80, 2, OP.TUPLE1, OP.STOP]), []), /corrupt \(the stack runs empty at byte 2\)/);
  damaged(torchArchive(Buffer.from([0x80, 2, OP.BINGET, 7, OP.STOP]), []), /corrupt \(memo 7 was never stored at byte 2\)/);
  damaged(torchArchive(Buffer.from([0x80, 2, OP.NONE, OP.SETITEMS, OP.STOP]), []), /corrupt \(no MARK to end at byte 3\)/);
});

test('the legacy (pre-1.6) format and other files are refused with what to do', () => {
  const legacy = Buffer.concat([Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]), Buffer.alloc(64)]);
  assert.throws(() => readTorchCheckpoint(writeBytes(legacy)), /saved by PyTorch before 1\.6, in the legacy format .*re-save it with a newer PyTorch .* or convert it to safetensors/);
  const tar = Buffer.alloc(1024);
  tar.write('ustar', 257, 'latin1');
  assert.throws(() => readTorchCheckpoint(writeBytes(tar)), /before 1\.6/);
  assert.throws(() => readTorchCheckpoint(writeBytes(Buffer.from('{"not": "a checkpoint"}'))), /is not a PyTorch checkpoint \(torch\.save writes a ZIP archive/);
  assert.throws(() => readTorchCheckpoint(path.join(dir, 'missing.pth')), /cannot read .*missing\.pth/);
});

test('weights by path: .pth/.pt through the tensor-only reader, every other name as safetensors only', () => {
  const specs = { w: { storage: f32('0', [1, 2]), shape: [2] } };
  for (const ext of ['.pth', '.pt', '.PTH']) {
    const f = file(ext);
    writeTorchFile(f, specs);
    assert.equal(isTorchCheckpointPath(f), true);
    assert.deepEqual(readWeightsFile(f), { tensors: readTorchCheckpoint(f), metadata: {} });
  }
  for (const ext of ['.bin', '.ckpt', '.safetensors', '.pth.zip']) {
    const f = file(ext);
    writeTorchFile(f, specs);
    assert.equal(isTorchCheckpointPath(f), false);
    assert.throws(() => readWeightsFile(f), /not a safetensors file/);
  }
  const s = file('.safetensors');
  fs.writeFileSync(s, encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: Float32Array.of(3) } }, { kind: 'linear' }));
  assert.deepEqual(readWeightsFile(s).metadata, { kind: 'linear' });
});

test('a broadcast view with more elements than its storage is refused rather than allocated', () => {
  const f = file();
  writeTorchFile(f, { w: { storage: f32('0', [1]), shape: [1_000_000, 1_000_000], stride: [0, 0] } });
  assert.throws(() => readTorchCheckpoint(f), /a tensor of shape \[1000000,1000000\] has more elements than its storage 0: save it with \.contiguous\(\)/);
});
