/** Why onnxruntime refused to open a model file, said as what to do: the op, node and opset at fault, or a damaged file. */
import * as fs from 'node:fs';
import { PbReader, Wire } from '../onnx/protobuf';

/** The opset DDPO Studio's own graphs and the exports it is tested with use. */
const TESTED_OPSET = 17;
const REEXPORT = `re-export the model with standard ONNX ops at opset ${TESTED_OPSET} (e.g. optimum-cli export onnx --opset ${TESTED_OPSET})`;

/** The nodes and opset imports of an .onnx file, read without its weights. */
export interface ModelOutline {
  opsets: { domain: string; version: number }[];
  nodes: { name: string; opType: string; domain: string }[];
}

/** Reads the main graph's nodes and the opset imports of an .onnx file; undefined when it cannot be parsed. */
export function readModelOutline(file: string): ModelOutline | undefined {
  try {
    const r = new PbReader(fs.readFileSync(file));
    const outline: ModelOutline = { opsets: [], nodes: [] };
    while (!r.done()) {
      const [f, w] = r.tag();
      if (f === 8 && w === Wire.Bytes) outline.opsets.push(fields(r.sub(), { 1: 'domain' }, { 2: 'version' }) as ModelOutline['opsets'][number]);
      else if (f === 7 && w === Wire.Bytes) {
        const g = r.sub();
        while (!g.done()) {
          const [gf, gw] = g.tag();
          if (gf === 1 && gw === Wire.Bytes) outline.nodes.push(fields(g.sub(), { 3: 'name', 4: 'opType', 7: 'domain' }, {}) as ModelOutline['nodes'][number]);
          else g.skip(gw);
        }
      } else r.skip(w);
    }
    return outline;
  } catch {
    return undefined;
  }
}

// String and varint fields of one message by field number; the rest skipped; missing strings are ''.
function fields(r: PbReader, strings: Record<number, string>, ints: Record<number, string>): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const k of Object.values(strings)) out[k] = '';
  while (!r.done()) {
    const [f, w] = r.tag();
    if (strings[f] && w === Wire.Bytes) out[strings[f]] = r.string();
    else if (ints[f] && w === Wire.Varint) out[ints[f]] = r.int();
    else r.skip(w);
  }
  return out;
}

/** An op onnxruntime could not use, as its message names it. */
interface OpProblem { op: string; domain: string; node?: string; version?: number }

// onnxruntime's wordings for an op it has no schema or no kernel for.
function opProblemIn(message: string): OpProblem | undefined {
  let m = message.match(/In Node, \("([^"]*)", ([\w.]+), "([^"]*)", -?\d+\)[\s\S]*?No Op registered for [\w.]+ with domain_version of (\d+)/);
  if (m) return { node: m[1], op: m[2], domain: m[3], version: Number(m[4]) };
  m = message.match(/([\w.]+):([\w.]+)\(-?\d+\) is not a registered function\/op/);
  if (m) return { domain: m[1], op: m[2] };
  m = message.match(/Could not find an implementation for ([\w.]+)\((\d+)\) node with name '([^']*)'/);
  if (m) return { op: m[1], domain: '', version: Number(m[2]), node: m[3] };
  return undefined;
}

/**
 * The hint to print under onnxruntime's message for `file`: which op, node and opset it could not handle and what is
 * supported; which opset is too new; or, when the message names none of these, to check the file is complete.
 */
export function explainLoadFailure(message: string, file: string): string {
  const newer = message.match(/Opset (\d+) is under development[\s\S]*?support for domain ([\w.]+) is till opset (\d+)/);
  if (newer) {
    return `the model is stamped with ${newer[2]} opset ${newer[1]}, newer than this onnxruntime supports (up to opset ${newer[3]}): ${REEXPORT}`;
  }
  const ir = message.match(/Unsupported model IR version: (\d+), max supported IR version: (\d+)/);
  if (ir) return `the model's ONNX IR version ${ir[1]} is newer than this onnxruntime reads (up to ${ir[2]}): ${REEXPORT} with an older onnx package`;
  const op = opProblemIn(message);
  if (op) return describeOpProblem(op, readModelOutline(file));
  return 'check that the file (and any external data file next to it, e.g. model.onnx_data or weights.pb) is complete';
}

function describeOpProblem(p: OpProblem, outline: ModelOutline | undefined): string {
  const domain = p.domain || 'ai.onnx';
  const opset = outline?.opsets.find((o) => (o.domain || 'ai.onnx') === domain)?.version ?? p.version;
  const nodes = outline?.nodes.filter((n) => n.opType === p.op && (n.domain || 'ai.onnx') === domain).map((n) => n.name) ?? [];
  const names = nodes.length ? nodes : p.node !== undefined ? [p.node] : [];
  const where = names.length ? ` at node "${names[0]}"${names.length > 1 ? ` and ${names.length - 1} more` : ''}` : '';
  const supported = domain === 'ai.onnx'
    ? `onnxruntime runs the standard ONNX ops of opsets 7 and up (and com.microsoft ops); DDPO Studio's graphs use opset ${TESTED_OPSET}`
    : `onnxruntime knows no ops of domain ${domain} (a custom op library the exporter used)`;
  return `op ${domain === 'ai.onnx' ? '' : `${domain}.`}${p.op}${where} is not available in ${domain} opset ${opset ?? '?'}: ${supported}; ${REEXPORT}`;
}

/** The op onnxruntime found no kernel for, when that is why a session did not open. */
export function missingKernel(message: string): string | undefined {
  const p = opProblemIn(message);
  return p && /Could not find an implementation/.test(message) ? p.op : undefined;
}
