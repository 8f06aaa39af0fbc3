/** Which execution provider each node ran on, read from onnxruntime's verbose session log. */
import { spawn } from 'node:child_process';
import type { ExecutionProvider } from './providers';

/** Nodes per provider, e.g. `{ WebGpuExecutionProvider: 1650, CPUExecutionProvider: 4 }`, and the CPU ones by name. */
export interface NodePlacement {
  counts: Record<string, number>;
  /** `opType (node name)` of each node placed on the CPU while a GPU provider was asked for. */
  cpuNodes: string[];
}

/**
 * Parses the "Node placements" block onnxruntime logs at verbose level while creating a session:
 * ` All nodes placed on [X]. Number of nodes: N`, or per provider ` Node(s) placed on [X]. Number of nodes: N`
 * followed by one `  OpType (name)` line per node.
 */
export function parseNodePlacement(log: string): NodePlacement | undefined {
  const lines = log.split('\n');
  const start = lines.findIndex((l) => l.includes('] Node placements'));
  if (start < 0) return undefined;
  const counts: Record<string, number> = {};
  const cpuNodes: string[] = [];
  let current: string | undefined;
  for (const l of lines.slice(start + 1)) {
    const body = l.replace(/^.*VerifyEachNodeIsAssignedToAnEp\]/, '');
    if (body === l) break; // the block ends at the first line from another logger site
    const head = /(?:All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(body);
    if (head) { current = head[1]; counts[current] = (counts[current] ?? 0) + Number(head[2]); continue; }
    const node = /^\s+(\S+ \(.*\))\s*$/.exec(body);
    if (node && current === 'CPUExecutionProvider') cpuNodes.push(node[1]);
  }
  return { counts, cpuNodes: Object.keys(counts).length > 1 ? cpuNodes : [] };
}

/** Options for {@link probeNodePlacement}. */
export interface ProbeOptions {
  freeDimensionOverrides?: Record<string, number>;
  timeoutMs?: number;
}

/**
 * Opens `modelPath` on `ep` in a child process with verbose logging and returns the node placement.
 * A child is needed because onnxruntime writes its log to the native stderr, which JavaScript cannot read in-process.
 */
export async function probeNodePlacement(modelPath: string, ep: ExecutionProvider, opts: ProbeOptions = {}): Promise<NodePlacement> {
  const ortPath = require.resolve('onnxruntime-node');
  const script = `const ort = require(${JSON.stringify(ortPath)});
const [file, ep, dims] = JSON.parse(process.argv[1]);
ort.InferenceSession.create(file, { executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'], logSeverityLevel: 0, logId: 'placement', freeDimensionOverrides: dims })
  .then((s) => s.release(), (e) => { console.error('PROBE_FAILED ' + e.message); process.exitCode = 1; });`;
  const child = spawn(process.execPath, ['-e', script, JSON.stringify([modelPath, ep, opts.freeDimensionOverrides ?? {}])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const timer = setTimeout(() => child.kill(), opts.timeoutMs ?? 300_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  const failed = /PROBE_FAILED (.*)/.exec(log);
  if (failed || code !== 0) throw new Error(`could not open ${modelPath} on ${ep} to read node placement: ${failed?.[1] ?? `exit code ${code}`}`);
  const placement = parseNodePlacement(log);
  if (!placement) throw new Error(`onnxruntime logged no node placement for ${modelPath} on ${ep} (this build may not log it)`);
  return placement;
}

/** A short summary: `webgpu: 1650 nodes, CPU: 4 (Range (/x), ...)`. */
export function describePlacement(p: NodePlacement): string {
  const parts = Object.entries(p.counts).map(([k, n]) => `${k.replace('ExecutionProvider', '')}: ${n} nodes`);
  const cpu = p.cpuNodes.length ? ` — on CPU: ${p.cpuNodes.slice(0, 8).join(', ')}${p.cpuNodes.length > 8 ? `, … (${p.cpuNodes.length})` : ''}` : '';
  return parts.join(', ') + cpu;
}

/**
 * Node placement read from an onnxruntime profile (its `Node` events name the provider that ran each node): what a
 * session's first run shows without a second, verbose session.
 */
export function placementFromProfile(events: readonly { cat?: string; name?: string; args?: Record<string, unknown> }[]): NodePlacement | undefined {
  const seen = new Map<string, string>();
  for (const e of events) {
    if (e.cat !== 'Node' || typeof e.args?.provider !== 'string') continue;
    const node = (e.name ?? '').replace(/_kernel_time$|_fence_(before|after)$/, '');
    if (!seen.has(node)) seen.set(node, `${e.args.provider}\u0000${String(e.args.op_name ?? '?')}`);
  }
  if (!seen.size) return undefined;
  const counts: Record<string, number> = {};
  const cpuNodes: string[] = [];
  for (const [node, v] of seen) {
    const [provider, op] = v.split('\u0000');
    counts[provider] = (counts[provider] ?? 0) + 1;
    if (provider === 'CPUExecutionProvider') cpuNodes.push(`${op} (${node})`);
  }
  return { counts, cpuNodes: Object.keys(counts).length > 1 ? cpuNodes : [] };
}
