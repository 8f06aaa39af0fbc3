import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ModelFolderError, inspectModelFolder, loadModelFolder, modelFingerprint } from '../../../src/core/models/modelFolder';
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

// The smallest folder that validates: configs, a tokenizer, and ONNX files that only start like one (never opened here).
function minimalFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sdmin-'));
  const put = (rel: string, body: string | Uint8Array) => { mkdirSync(dirname(join(dir, rel)), { recursive: true }); writeFileSync(join(dir, rel), body); };
  put('model_index.json', '{}');
  put('scheduler/scheduler_config.json', '{}');
  for (const m of ['unet', 'text_encoder', 'vae_decoder']) put(`${m}/model.onnx`, Uint8Array.from([0x08, 0x07, ...new Array(30).fill(0)]));
  put('tokenizer/vocab.json', '{}');
  put('tokenizer/merges.txt', '');
  return dir;
}

test('a VAE without config.json decodes with SD\'s latent scaling 0.18215; a config\'s own factor wins', () => {
  const dir = minimalFolder();
  try {
    assert.equal(loadModelFolder(dir).vaeScalingFactor, 0.18215);
    writeFileSync(join(dir, 'vae_decoder/config.json'), JSON.stringify({ scaling_factor: 0.13025 }));
    assert.equal(loadModelFolder(dir).vaeScalingFactor, 0.13025);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a config file still downloading (a .part beside it) is named as an incomplete download, not as missing', () => {
  const dir = minimalFolder();
  try {
    for (const f of ['model_index.json', 'scheduler/scheduler_config.json']) renameSync(join(dir, f), join(dir, `${f}.part`));
    assert.deepEqual(inspectModelFolder(dir).problems, [
      { file: 'model_index.json', problem: 'download incomplete (.part file present)' },
      { file: 'scheduler/scheduler_config.json', problem: 'download incomplete (.part file present)' },
    ]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
