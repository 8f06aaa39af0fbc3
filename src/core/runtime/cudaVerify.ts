/**
 * Does the CUDA provider really run here? A small graph (cuDNN convolution, cuBLAS float32 and float16 matrix products,
 * onnxruntime's own kernels) is run on CUDA and on the CPU in a child process, and the two results compared.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { A, GraphBuilder } from '../onnx/builder';
import { DataType, emptyGraph, makeModel, makeTensor } from '../onnx/ir';
import { encodeModel } from '../onnx/proto';
import { placementFromProfile } from './placement';
import { profileFiles } from './profile';

/** The verdict, with what a person needs to act on a failure. */
export interface CudaVerdict {
  ok: boolean;
  /** One line: what ran where and how close it came to the CPU, or why CUDA could not run. */
  message: string;
  /** A library the dynamic loader could not find, when that is why. */
  missingLibrary?: string;
  /** Nodes per provider of the CUDA session's run. */
  counts?: Record<string, number>;
  /** Largest difference from the CPU, relative to the output's largest magnitude, per output. */
  diffs?: Record<string, number>;
}

/** The largest relative difference an output may have from the CPU's (TF32 and float16 products included). */
export const VERIFY_TOLERANCE = 2e-2;

/** The verification graph: Conv+Relu (cuDNN), MatMul+Add+Softmax (cuBLAS float32), a float16 MatMul (tensor cores). */
export function verifyModel(): Uint8Array {
  const g = emptyGraph('cuda_verify');
  const b = new GraphBuilder(g);
  const x = b.input('x', DataType.FLOAT, [1, 4, 16, 16]);
  const a = b.input('a', DataType.FLOAT, [64, 64]);
  const m = b.input('m', DataType.FLOAT, [64, 64]);
  const w = b.initializer(makeTensor('w', DataType.FLOAT, [8, 4, 3, 3], Float32Array.from({ length: 288 }, (_, i) => Math.sin(i) * 0.3)));
  b.output(b.op('Relu', [b.op('Conv', [x, w], { pads: A.ints([1, 1, 1, 1]) })]), 'conv');
  b.output(b.op('Softmax', [b.op('Add', [b.op('MatMul', [a, m]), a])], { axis: A.i(-1) }), 'gemm');
  const half = (v: string) => b.op('Cast', [v], { to: A.i(DataType.FLOAT16) });
  b.output(b.op('Cast', [b.op('MatMul', [half(a), half(m)])], { to: A.i(DataType.FLOAT) }), 'gemm16');
  return encodeModel(makeModel(g));
}

// Runs in the child: CPU reference, then the provider under test with profiling; prints one RESULT or FAILED line.
const CHILD = `const ort = require(process.env.DDPO_ORT);
const [model, ep, prefix] = JSON.parse(process.argv[1]);
let s = 7; const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const t = (dims, k) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((p, q) => p * q) }, () => rnd() * k), dims);
const feeds = { x: t([1, 4, 16, 16], 1), a: t([64, 64], 1), m: t([64, 64], 0.125) };
(async () => {
  const ref = await (await ort.InferenceSession.create(model, { executionProviders: ['cpu'] })).run(feeds);
  let sess;
  try {
    sess = await ort.InferenceSession.create(model, { executionProviders: [ep === 'cpu' ? 'cpu' : { name: ep, deviceId: 0 }], enableProfiling: true, profileFilePrefix: prefix });
  } catch (e) { console.log('FAILED ' + JSON.stringify(String(e && e.message || e))); return; }
  const got = await sess.run(feeds);
  sess.endProfiling();
  const diffs = {};
  for (const k of Object.keys(ref)) { let d = 0, m = 0; const a = got[k].data, b = ref[k].data;
    for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); } diffs[k] = d / (m || 1); }
  console.log('RESULT ' + JSON.stringify({ diffs }));
})().catch((e) => console.log('FAILED ' + JSON.stringify(String(e && e.stack || e))));`;

/** What the child printed and its exit. */
export interface ChildOutput { stdout: string; stderr: string; code: number | null }

/** Starts node on a script with an environment; tests pass their own. */
export type RunChild = (script: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) => Promise<ChildOutput>;

const runChild: RunChild = (script, args, env, timeoutMs) => new Promise((resolve) => {
  const child = spawn(process.execPath, ['-e', script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  child.on('close', (code) => { clearTimeout(timer); resolve({ stdout, stderr, code }); });
});

/** Options of {@link verifyCudaProvider}. */
export interface VerifyOptions {
  /** The environment of the child (LD_LIBRARY_PATH with the CUDA libraries). */
  env: NodeJS.ProcessEnv;
  /** onnxruntime-node's entry, e.g. require.resolve('onnxruntime-node'). */
  ortEntry: string;
  /** The provider under test (`cpu` runs the same check without a GPU). */
  ep?: 'cuda' | 'cpu';
  timeoutMs?: number;
  run?: RunChild;
}

/** Runs the verification graph on `ep` and on the CPU in a child process and judges the result. */
export async function verifyCudaProvider(opts: VerifyOptions): Promise<CudaVerdict> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cuda-verify-'));
  try {
    const model = path.join(dir, 'verify.onnx');
    fs.writeFileSync(model, verifyModel());
    const ep = opts.ep ?? 'cuda';
    const prefix = path.join(dir, 'profile');
    const out = await (opts.run ?? runChild)(CHILD, [JSON.stringify([model, ep, prefix])], { ...opts.env, DDPO_ORT: opts.ortEntry }, opts.timeoutMs ?? 300_000);
    return judge(out, ep, readPlacement(prefix));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function readPlacement(prefix: string): Record<string, number> {
  const file = profileFiles(prefix).at(-1);
  try { return (file && placementFromProfile(JSON.parse(fs.readFileSync(file, 'utf8')))?.counts) || {}; } catch { return {}; }
}

/**
 * The verdict from the child's output and the CUDA session's nodes per provider: a failed start explained (the missing
 * library named), or the comparison with the CPU.
 */
export function judge(out: ChildOutput, ep: string, counts: Record<string, number>): CudaVerdict {
  const result = /^RESULT (.*)$/m.exec(out.stdout);
  if (!result) return explainFailure(out, ep);
  const { diffs } = JSON.parse(result[1]) as { diffs: Record<string, number> };
  const provider = ep === 'cpu' ? 'CPUExecutionProvider' : 'CUDAExecutionProvider';
  const onEp = counts[provider] ?? 0;
  const worst = Object.entries(diffs).sort((a, b) => b[1] - a[1])[0];
  const where = Object.entries(counts).map(([k, n]) => `${k.replace('ExecutionProvider', '')} ${n}`).join(', ') || 'no profile';
  if (onEp === 0) return { ok: false, counts, diffs, message: `the session opened, but no node ran on ${ep} (nodes: ${where}); onnxruntime placed everything elsewhere` };
  if (!worst || !(worst[1] <= VERIFY_TOLERANCE)) return { ok: false, counts, diffs, message: `${ep} ran (nodes: ${where}) but output '${worst?.[0]}' differs from the CPU by ${worst?.[1]} of its largest value (at most ${VERIFY_TOLERANCE} expected): the provider computes wrongly here; a provider of another onnxruntime version corrupts like this` };
  return { ok: true, counts, diffs, message: `a Conv, float32 and float16 MatMuls and a Softmax ran on ${ep} (nodes: ${where}) and agree with the CPU within ${worst[1].toExponential(1)}` };
}

/**
 * Why the provider did not start: onnxruntime's log on the native stderr names the library the loader could not find
 * ("Failed to load library ...providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file"),
 * which the JavaScript error ("Failed to load shared library") does not.
 */
export function explainFailure(out: ChildOutput, ep: string): CudaVerdict {
  const failed = /^FAILED (.*)$/m.exec(out.stdout);
  const error = failed ? (JSON.parse(failed[1]) as string) : `the check process ended with code ${out.code} and no result`;
  const text = `${out.stderr}\n${error}`;
  const missing = /([\w.+-]+\.so(?:\.\d+)*): cannot open shared object file/.exec(text)?.[1];
  if (missing) return { ok: false, missingLibrary: missing, message: `CUDA could not run: ${missing} was not found (the loader searched LD_LIBRARY_PATH and the system folders)` };
  const undefinedSymbol = /undefined symbol: (\S+)/.exec(text)?.[1];
  if (undefinedSymbol) return { ok: false, message: `CUDA could not run: a library lacks the symbol ${undefinedSymbol}, so a CUDA or cuDNN library of another version was loaded` };
  const detail = (/\] ([^\n]*)$/m.exec(out.stderr)?.[1] ?? error).trim().split('\n')[0].slice(0, 400);
  return { ok: false, message: `${ep === 'cpu' ? 'the CPU check' : 'CUDA'} could not run: ${detail}` };
}
