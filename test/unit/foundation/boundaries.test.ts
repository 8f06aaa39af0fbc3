import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '../../..');

function tsFiles(dir: string): string[] {
  const abs = path.join(repo, dir);
  if (!fs.existsSync(abs)) return [];
  return (fs.readdirSync(abs, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).map((f) => path.join(abs, f));
}

// Module specifiers of static imports, re-exports, dynamic imports and requires; `typeOnly` marks `import type`.
function importsOf(file: string): { spec: string; typeOnly: boolean }[] {
  const src = fs.readFileSync(file, 'utf8');
  const out: { spec: string; typeOnly: boolean }[] = [];
  for (const m of src.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+['"]([^'"]+)['"]/gm)) out.push({ spec: m[3], typeOnly: !!m[2] });
  for (const m of src.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) out.push({ spec: m[1], typeOnly: false });
  for (const m of src.matchAll(/\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push({ spec: m[1], typeOnly: false });
  return out;
}

const rel = (f: string) => path.relative(repo, f).split(path.sep).join('/');

/** The .ts file a relative import names, or undefined for a package or a file that is not TypeScript. */
function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), spec);
  return [`${base}.ts`, path.join(base, 'index.ts')].find((p) => fs.existsSync(p));
}

/**
 * Every src/ file (repo-relative) and the src/ files it imports. Type-only imports count: the compiler erases them,
 * but the importer still depends on the other file's shape, and a type that two files need belongs in a lower one.
 */
function srcImportGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of tsFiles('src')) {
    const targets = importsOf(f).map(({ spec }) => resolveImport(f, spec)).filter((t): t is string => t !== undefined);
    graph.set(rel(f), [...new Set(targets.map(rel))]);
  }
  return graph;
}

/** The files of each import circle (Tarjan's strongly connected components), with one loop through them. */
function importCircles(graph: Map<string, string[]>): string[] {
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const circles: string[] = [];
  const visit = (v: string) => {
    order.set(v, order.size);
    low.set(v, order.get(v)!);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!order.has(w)) visit(w);
      if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, low.get(w)!));
    }
    if (low.get(v) !== order.get(v)) return;
    const members = stack.splice(stack.indexOf(v));
    if (members.length > 1 || graph.get(v)!.includes(v)) circles.push(`${members.sort().join(', ')}: ${loopThrough(graph, new Set(members)).join(' -> ')}`);
  };
  for (const v of graph.keys()) if (!order.has(v)) visit(v);
  return circles;
}

/** The shortest loop from the first of `members` back to it, through members only. */
function loopThrough(graph: Map<string, string[]>, members: Set<string>): string[] {
  const start = [...members].sort()[0];
  const prev = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    for (const w of graph.get(queue[i]) ?? []) {
      if (w === start) {
        const loop = [start];
        for (let v: string | undefined = queue[i]; v !== undefined && v !== start; v = prev.get(v)) loop.unshift(v);
        return [start, ...loop];
      }
      if (members.has(w) && !prev.has(w)) { prev.set(w, queue[i]); queue.push(w); }
    }
  }
  return [start];
}

/**
 * The floors of src/core, lowest first: a file imports its own folder and the floors below it, never one above.
 * A file directly in src/core is a floor of its own, named with its extension. Plumbing stands low (runtime/:
 * providers, sessions and tensors, under everything that opens a session), tooling on top (bench/).
 */
const CORE_FLOORS = [
  'random.ts', 'crashPoint.ts', 'fsutil.ts', 'safetensors.ts', 'zip.ts', 'torchLoad.ts', 'image', 'onnx', 'autodiff', 'graphs', 'runtime', 'models',
  'diffusion', 'train', 'experiment', 'reward', 'tiny', 'ddpo', 'doctor', 'studio', 'demo', 'bench',
];

/** The floor a src/core file stands on: its folder under src/core, or its own name when it lies in src/core itself. */
const coreFloor = (file: string) => file.split('/')[2];

test('src/core and src/worker never import vscode', () => {
  const offenders = [...tsFiles('src/core'), ...tsFiles('src/worker')].flatMap((f) => importsOf(f).filter((i) => i.spec === 'vscode').map(() => rel(f)));
  assert.deepEqual(offenders, []);
});

test('webview code imports only webview files, src/protocol and the webview UI toolkit', () => {
  const offenders: string[] = [];
  for (const f of tsFiles('webview')) {
    for (const { spec } of importsOf(f)) {
      const target = spec.startsWith('.') ? path.resolve(path.dirname(f), spec) : spec;
      const ok = target === path.join(repo, 'src', 'protocol') || spec === '@vscode/webview-ui-toolkit' || (path.isAbsolute(target) && target.startsWith(path.join(repo, 'webview') + path.sep));
      if (!ok) offenders.push(`${rel(f)} imports ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('src/protocol.ts imports nothing at run time (webview, host and worker all load it)', () => {
  assert.deepEqual(importsOf(path.join(repo, 'src/protocol.ts')).filter((i) => !i.typeOnly), []);
});

test('nothing the extension host loads imports onnxruntime-node (only the worker does)', () => {
  // Walk relative imports from the extension entry point; type-only imports are erased and do not count.
  const seen = new Set<string>();
  const offenders: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const { spec, typeOnly } of importsOf(file)) {
      if (typeOnly) continue;
      if (spec.startsWith('onnxruntime')) offenders.push(`${rel(file)} imports ${spec}`);
      const next = resolveImport(file, spec);
      if (next) visit(next);
    }
  };
  visit(path.join(repo, 'src/extension/extension.ts'));
  assert.ok(seen.size > 5, `walked ${seen.size} files`);
  assert.deepEqual(offenders, []);
});

test('no import circle among src/ files (type-only imports count too)', () => {
  const graph = srcImportGraph();
  assert.ok(graph.size > 100, `read ${graph.size} files`);
  // a circle is broken by moving what both files need to the lower one (a type to the module it describes)
  assert.deepEqual(importCircles(graph), []);
});

test('every src/core floor is placed in CORE_FLOORS, and no src/core file imports a floor above its own', () => {
  const present = [...new Set(tsFiles('src/core').map((f) => coreFloor(rel(f))))].sort();
  assert.deepEqual(present.filter((f) => !CORE_FLOORS.includes(f)), [], 'place each new folder of src/core in CORE_FLOORS');
  assert.deepEqual(CORE_FLOORS.filter((f) => !present.includes(f)), [], 'drop the folders gone from src/core from CORE_FLOORS');
  const upward: string[] = [];
  for (const [file, targets] of srcImportGraph()) {
    if (!file.startsWith('src/core/')) continue;
    for (const t of targets) {
      if (!t.startsWith('src/core/') || CORE_FLOORS.indexOf(coreFloor(t)) <= CORE_FLOORS.indexOf(coreFloor(file))) continue;
      upward.push(`${file} imports ${t}: ${coreFloor(t)} stands above ${coreFloor(file)}`);
    }
  }
  assert.deepEqual(upward, []);
});

test('src/core never imports src/extension, src/worker or src/cli', () => {
  const offenders = [...srcImportGraph()].filter(([file]) => file.startsWith('src/core/'))
    .flatMap(([file, targets]) => targets.filter((t) => /^src\/(extension|worker|cli)\//.test(t)).map((t) => `${file} imports ${t}`));
  assert.deepEqual(offenders, []);
});
