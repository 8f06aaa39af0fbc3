import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CliIO } from '../../../src/cli/command';
import { commands } from '../../../src/cli/commands';
import { runCli } from '../../../src/cli/dispatch';
import { CKPT_FILES } from '../../../src/core/ddpo/checkpoint';
import { MERGED_LORA_KEY } from '../../../src/core/ddpo/exportLora';
import { newExperiment, serializeExperiment } from '../../../src/core/experiment/schema';
import { loadModel, saveModel } from '../../../src/core/onnx/proto';
import { exportLoraFile } from '../../../src/core/studio/exportLora';
import { initLoraWeights, injectLora } from '../../../src/core/train/lora';
import { encodeLora } from '../../../src/core/train/loraFile';

const TINY = path.resolve(__dirname, '../../../media/tiny-model');
const skip = fs.existsSync(path.join(TINY, 'unet', 'model.onnx')) ? false : `no embedded model at ${TINY}`;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-export-'));

// A copy of the tiny model (so a test may find it overwritten) and an experiment on it with one checkpoint.
function setup(modelDir?: string): { exp: string; model: string; root: string } {
  const root = tmp();
  const model = modelDir ?? path.join(root, 'model');
  if (!modelDir) fs.cpSync(TINY, model, { recursive: true });
  const exp = path.join(root, 'exp');
  fs.mkdirSync(path.join(exp, 'ddpo', 'checkpoints', 'epoch-000000'), { recursive: true });
  fs.writeFileSync(path.join(exp, 'experiment.json'), serializeExperiment(newExperiment('exp', { baseModel: { id: 'copy', path: model }, prompts: ['a red circle'] })));
  const ck = path.join(exp, 'ddpo', 'checkpoints', 'epoch-000000');
  const lora = injectLora(loadModel(path.join(TINY, 'unet', 'model.onnx')), { rank: 2, alpha: 2 });
  const w = initLoraWeights(lora.adapters, 2, 2, 1);
  for (const m of w.modules.values()) m.B.fill(0.01);
  fs.writeFileSync(path.join(ck, CKPT_FILES.peft), encodeLora(w, 'peft'));
  fs.writeFileSync(path.join(ck, CKPT_FILES.kohya), encodeLora(w, 'kohya'));
  fs.writeFileSync(path.join(ck, CKPT_FILES.state), '{}');
  return { exp, model, root };
}

async function exportLora(...argv: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = [], err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), progress: () => undefined, signal: new AbortController().signal };
  return { code: await runCli(['export-lora', ...argv], io, commands), out, err: err.join('\n') };
}

test('export-lora writes to a new path; an existing one needs --force, which replaces only a file outside experiments and models', { skip }, async () => {
  const { exp, model, root } = setup();
  const out = path.join(root, 'mine.safetensors');
  assert.equal((await exportLora('--experiment', exp, '--format', 'kohya', '--out', out)).code, 0);
  const kohya = fs.readFileSync(out);
  assert.ok(kohya.equals(fs.readFileSync(path.join(exp, 'ddpo', 'checkpoints', 'epoch-000000', CKPT_FILES.kohya))));

  const again = await exportLora('--experiment', exp, '--format', 'peft', '--out', out);
  assert.equal(again.code, 1);
  assert.match(again.err, /mine\.safetensors already exists; choose a new path, or pass --force to replace it/);
  assert.ok(fs.readFileSync(out).equals(kohya), 'left as it was');
  assert.equal((await exportLora('--experiment', exp, '--format', 'peft', '--out', out, '--force')).code, 0);
  assert.ok(!fs.readFileSync(out).equals(kohya), 'replaced with --force');

  const protectedFiles: Array<[string, RegExp]> = [
    [path.join(exp, 'experiment.json'), /belongs to the experiment .*exp \(it has experiment\.json\)/],
    [path.join(exp, 'ddpo', 'checkpoints', 'epoch-000000', CKPT_FILES.peft), /belongs to the experiment/],
    [path.join(model, 'unet', 'model.onnx'), /belongs to the model folder .*model \(it has model_index\.json\)/],
    [path.join(model, 'text_encoder', 'model.onnx'), /belongs to the model folder/],
  ];
  fs.symlinkSync(path.join(exp, 'experiment.json'), path.join(root, 'innocent.safetensors'));
  protectedFiles.push([path.join(root, 'innocent.safetensors'), /belongs to the experiment/]);
  for (const [file, why] of protectedFiles) {
    const before = fs.readFileSync(file);
    const r = await exportLora('--experiment', exp, '--format', 'kohya', '--out', file, '--force');
    assert.equal(r.code, 1, file);
    assert.match(r.err, why);
    assert.match(r.err, /never replaces an experiment's or a model's files, even with --force/);
    assert.ok(fs.readFileSync(file).equals(before), `${file} is untouched`);
  }
  const dir = await exportLora('--experiment', exp, '--format', 'kohya', '--out', root, '--force');
  assert.match(dir.err, /is a folder; give the path of the file to write/);
  assert.deepEqual(fs.readdirSync(root).filter((f) => f.includes('.tmp-')), []);
});

test('the merged ONNX export writes FILE and FILE.data under the same rules, and is never merged into again', { skip }, async () => {
  const { exp, root } = setup();
  const out = path.join(root, 'merged.onnx');
  const r = await exportLora('--experiment', exp, '--format', 'onnx', '--out', out);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.out, [`wrote ${out} and ${out}.data (onnx, checkpoint epoch-000000: epoch 1 in the studio)`]);
  const merged = loadModel(out);
  assert.deepEqual(JSON.parse(merged.metadata[MERGED_LORA_KEY]), { experiment: 'exp', epoch: 0 });

  assert.match((await exportLora('--experiment', exp, '--format', 'onnx', '--out', out)).err, /merged\.onnx already exists/);
  fs.writeFileSync(path.join(root, 'other.onnx.data'), 'someone else\'s weights');
  const data = await exportLora('--experiment', exp, '--format', 'onnx', '--out', path.join(root, 'other.onnx'));
  assert.match(data.err, /other\.onnx\.data already exists/);
  assert.ok(!fs.existsSync(path.join(root, 'other.onnx')), 'neither file is written when one of them is refused');

  // An experiment whose base model is that export: its UNet already carries the LoRA.
  const exported = path.join(root, 'exported-model');
  fs.cpSync(TINY, exported, { recursive: true });
  fs.copyFileSync(out, path.join(exported, 'unet', 'model.onnx'));
  fs.copyFileSync(`${out}.data`, path.join(exported, 'unet', 'merged.onnx.data'));
  const second = setup(exported);
  const twice = await exportLora('--experiment', second.exp, '--format', 'onnx', '--out', path.join(second.root, 'twice.onnx'));
  assert.equal(twice.code, 1);
  assert.match(twice.err, /already has a LoRA merged into it \(exported by DDPO Studio: .*"epoch":0.*\); merging this one too would apply a LoRA twice/);
  // A merge without our metadata (an older export) is recognised by the merged weights' names.
  delete merged.metadata[MERGED_LORA_KEY];
  saveModel(merged, path.join(exported, 'unet', 'model.onnx'), { externalData: 'model.onnx_data' });
  assert.match((await exportLora('--experiment', second.exp, '--format', 'onnx', '--out', path.join(second.root, 'twice.onnx'))).err, /\d+ weights named \*\.merged_weight/);
  assert.ok(!fs.existsSync(path.join(second.root, 'twice.onnx')));
});

test('the studio exports into <exp>/exports/ under a new name each time, never over an earlier export', { skip }, async () => {
  const { exp } = setup();
  const first = await exportLoraFile(exp, 'kohya');
  const second = await exportLoraFile(exp, 'kohya');
  const third = await exportLoraFile(exp, 'peft');
  assert.deepEqual([first, second, third].map((r) => path.relative(exp, r.file)), [
    path.join('exports', 'exp-epoch-1-kohya.safetensors'), path.join('exports', 'exp-epoch-1-kohya-2.safetensors'), path.join('exports', 'exp-epoch-1-peft.safetensors'),
  ]);
  assert.ok(fs.readFileSync(first.file).equals(fs.readFileSync(second.file)));
  assert.deepEqual(fs.readdirSync(path.join(exp, 'exports')).sort(), ['exp-epoch-1-kohya-2.safetensors', 'exp-epoch-1-kohya.safetensors', 'exp-epoch-1-peft.safetensors']);
});

test('an export takes the newest checkpoint unless told the epoch, and the Diffusion-DPO run\'s when asked for that run', { skip }, async () => {
  const { exp, root } = setup();
  // distinct contents per checkpoint and run, so each export shows which one it copied
  const checkpoint = (run: string, epoch: number) => {
    const ck = path.join(exp, run, 'checkpoints', `epoch-${String(epoch).padStart(6, '0')}`);
    fs.mkdirSync(ck, { recursive: true });
    for (const f of [CKPT_FILES.kohya, CKPT_FILES.peft]) fs.writeFileSync(path.join(ck, f), `${run} ${epoch} ${f}`);
    fs.writeFileSync(path.join(ck, CKPT_FILES.state), '{}');
  };
  checkpoint('ddpo', 2);
  checkpoint('diffusion-dpo', 1);
  const text = (file: string) => fs.readFileSync(file, 'utf8');

  const newest = await exportLora('--experiment', exp, '--format', 'kohya', '--out', path.join(root, 'newest.safetensors'));
  assert.equal(newest.code, 0, newest.err);
  assert.equal(text(path.join(root, 'newest.safetensors')), `ddpo 2 ${CKPT_FILES.kohya}`);
  assert.match(newest.out.join('\n'), /checkpoint epoch-000002: epoch 3 in the studio/);
  const dpo = await exportLora('--experiment', exp, '--format', 'peft', '--algorithm', 'diffusion-dpo', '--out', path.join(root, 'dpo.safetensors'));
  assert.equal(dpo.code, 0, dpo.err);
  assert.equal(text(path.join(root, 'dpo.safetensors')), `diffusion-dpo 1 ${CKPT_FILES.peft}`);

  const studio = await exportLoraFile(exp, 'kohya');
  assert.deepEqual([path.basename(studio.file), text(studio.file)], ['exp-epoch-3-kohya.safetensors', `ddpo 2 ${CKPT_FILES.kohya}`]);
  const studioDpo = await exportLoraFile(exp, 'peft', undefined, 'diffusion-dpo');
  assert.deepEqual([path.basename(studioDpo.file), text(studioDpo.file)], ['exp-dpo-epoch-2-peft.safetensors', `diffusion-dpo 1 ${CKPT_FILES.peft}`]);
});
