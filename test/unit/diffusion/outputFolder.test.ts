import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CliIO } from '../../../src/cli/command';
import { commands } from '../../../src/cli/commands';
import { runCli } from '../../../src/cli/dispatch';

const TINY = join(__dirname, '../../../media/tiny-model');

async function ddpo(argv: string[], onOut?: (line: string, signal: AbortController) => void): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const ac = new AbortController();
  const io: CliIO = { out: (l) => { out.push(l); onOut?.(l, ac); }, err: (l) => err.push(l), progress: () => undefined, signal: ac.signal };
  return { code: await runCli(argv, io, commands), out, err };
}

// four images unless `more` says how many (a flag given twice is refused)
const generate = (dir: string, ...more: string[]) => ['generate', '--model', TINY, '--prompt', 'a red circle', '--seed', '7', '--steps', '3', ...(more.includes('--count') ? [] : ['--count', '4']), '--out', dir, ...more];

test('ddpo generate writes each image as it is made; an interrupted run keeps them and a rerun makes only the rest', async () => {
  const ref = mkdtempSync(join(tmpdir(), 'gen-ref-'));
  const out = mkdtempSync(join(tmpdir(), 'gen-resume-'));
  try {
    const whole = await ddpo(generate(ref));
    assert.equal(whole.code, 0, whole.err.join('\n'));

    // Stopped (as Ctrl+C does) once the first image is on disk.
    const stopped = await ddpo(generate(out), (_line, ac) => ac.abort());
    assert.equal(stopped.code, 130, stopped.err.join('\n'));
    assert.deepEqual(readdirSync(out).sort(), ['7.png'], 'the finished image stays, and no temporary file is left');
    const first = statSync(join(out, '7.png'));

    const rerun = await ddpo(generate(out));
    assert.equal(rerun.code, 0, rerun.err.join('\n'));
    assert.equal(rerun.out[0], `kept 1 of 4 images already in ${out} with these settings; making the other 3`);
    assert.deepEqual(rerun.out.slice(1), ['8', '9', '10'].map((s) => join(out, `${s}.png`)));
    assert.deepEqual(readdirSync(out).sort(), readdirSync(ref).sort());
    for (const f of readdirSync(ref)) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(ref, f))), `${f} equals the uninterrupted run's`);
    assert.equal(statSync(join(out, '7.png')).mtimeMs, first.mtimeMs, 'the kept image is not rewritten');

    const again = await ddpo(generate(out));
    assert.deepEqual(again.out, [`kept 4 of 4 images already in ${out} with these settings`]);

    // Images of other settings are never overwritten.
    const other = await ddpo(generate(out, '--guidance', '3'));
    assert.equal(other.code, 1);
    assert.match(other.err.join('\n'), /7\.png was made with other settings \(guidance "7\.5", this job's is "3"\); choose another output folder/);
    assert.ok(readFileSync(join(out, '7.png')).equals(readFileSync(join(ref, '7.png'))));
  } finally {
    rmSync(ref, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
});

test('ddpo generate refuses a --count beyond one folder\'s bound, saying the bound', async () => {
  const r = await ddpo(generate('/nonexistent-out', '--count', '10001'));
  assert.equal(r.code, 2);
  assert.match(r.err.join('\n'), /--count must be at most 10,000 per run; for more, run again with --seed 10007/);
});
