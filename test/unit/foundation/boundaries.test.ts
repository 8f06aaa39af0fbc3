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

const rel = (f: string) => path.relative(repo, f);

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
      if (spec.startsWith('.')) {
        const base = path.resolve(path.dirname(file), spec);
        const next = [`${base}.ts`, path.join(base, 'index.ts')].find((p) => fs.existsSync(p));
        if (next) visit(next);
      }
    }
  };
  visit(path.join(repo, 'src/extension/extension.ts'));
  assert.ok(seen.size > 5, `walked ${seen.size} files`);
  assert.deepEqual(offenders, []);
});
