import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelFolderError, loadModelFolder, modelFingerprint } from '../../../src/core/models/modelFolder';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { needsFixture, referenceSd } from '../fixtures';

function copyFixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sdfolder-'));
  cpSync(referenceSd, dir, { recursive: true });
  return dir;
}

test('the reference folder validates, with scaling factor and a stable fingerprint', { skip: needsFixture() }, () => {
  const f = loadModelFolder(referenceSd);
  assert.equal(f.vaeScalingFactor, 0.18215);
  assert.equal(f.vaeEncoder, undefined);
  assert.match(modelFingerprint(f), /^[0-9a-f]{12}$/);
  assert.equal(modelFingerprint(f), modelFingerprint(loadModelFolder(referenceSd)));
});

test('every missing or corrupt file is named in one error', { skip: needsFixture() }, () => {
  const dir = copyFixture();
  try {
    unlinkSync(join(dir, 'unet/model.onnx'));
    writeFileSync(join(dir, 'unet/model.onnx.part'), 'partial');
    unlinkSync(join(dir, 'tokenizer/merges.txt'));
    writeFileSync(join(dir, 'vae_decoder/model.onnx'), 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
    writeFileSync(join(dir, 'scheduler/scheduler_config.json'), '{ not json');
    const err = (() => { try { loadModelFolder(dir); } catch (e) { return e; } })();
    assert.ok(err instanceof ModelFolderError);
    assert.deepEqual(err.problems.map((p) => p.file).sort(), ['scheduler/scheduler_config.json', 'tokenizer/merges.txt', 'unet/model.onnx', 'vae_decoder/model.onnx']);
    assert.match(err.message, /unet\/model.onnx: download incomplete/);
    assert.match(err.message, /Git LFS pointer/);
    assert.match(err.message, /not valid JSON/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a folder that does not exist is reported as such', () => {
  assert.throws(() => loadModelFolder('/nonexistent/model'), /does not exist/);
});

test('the pipeline reads input names, dtypes and ranks from the sessions', { skip: needsFixture() }, async () => {
  const pipe = await StableDiffusionPipeline.load(referenceSd);
  try {
    assert.deepEqual([pipe.unetTimestep.name, pipe.unetTimestep.type, pipe.unetTimestep.shape.length], ['timestep', 'int64', 1]);
    assert.equal(pipe.latentChannels, 4);
    assert.equal(await pipe.vaeScaleFactor(), 2);
  } finally { await pipe.release(); }
});
