import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../../../src/core/safetensors';
import { conformanceCommand } from '../../../src/cli/conformance';
import { runCommand } from '../cli/runCommand';
import { needsFixture, referenceSd } from '../fixtures';

async function runCli(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const code = await runCommand(conformanceCommand, argv, { out: (l) => out.push(l), err: (l) => err.push(l), progress: () => {}, signal: new AbortController().signal });
  return { code, out, err };
}

test('conformance reports a wrong oracle as FAIL, counts it, and exits nonzero', { skip: needsFixture() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conformance-'));
  try {
    mkdirSync(join(dir, 'unet'));
    copyFileSync(join(referenceSd, 'unet/model.onnx'), join(dir, 'unet/model.onnx'));
    const o = readSafetensors(join(referenceSd, 'unet/oracle.safetensors'));
    const fwd = new Map([...o].filter(([k]) => k.startsWith('fwd.')));
    const bad = Float32Array.from(fwd.get('fwd.out_sample')!.data as Float32Array);
    bad[5] += 0.5;
    fwd.set('fwd.out_sample', { ...fwd.get('fwd.out_sample')!, data: bad });
    writeSafetensors(join(dir, 'unet/oracle.safetensors'), fwd);
    const r = await runCli([dir]);
    assert.equal(r.code, 1);
    assert.match(r.out[0], /^FAIL unet\.fwd\.out_sample +max rel err/);
    assert.equal(r.out[r.out.length - 1], '0 passed, 1 failed');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('conformance without a folder prints usage and exits 2', async () => {
  const r = await runCli([]);
  assert.equal(r.code, 2);
  assert.match(r.err.join('\n'), /Usage: ddpo conformance <dir>/);
});
