// `ddpo doctor`: the right verdict and an actionable message for every fixture, a variant and broken folders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CliIO } from '../../../src/cli/command';
import { doctorCommand } from '../../../src/cli/doctor';
import { diagnoseModel } from '../../../src/core/doctor/doctor';
import { formatModelReport } from '../../../src/core/doctor/format';
import { loadModel } from '../../../src/core/onnx/proto';
import type { ModelReport } from '../../../src/protocol';
import { runCommand } from '../cli/runCommand';
import { needsFixture, referenceSd } from '../fixtures';
import { variantFolder, withStaticShapes } from '../train/fixture';

const TINY = path.resolve(__dirname, '../../../media/tiny-model');

const fact = (r: ModelReport, label: string) => r.facts.find((f) => f.label === label)?.value ?? '';

async function doctor(...argv: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => out.push(l), progress: () => undefined, signal: new AbortController().signal };
  return { code: await runCommand(doctorCommand, argv, io), out: out.join('\n') };
}

test('the reference fixture: what it is, its LoRA targets per block with their names, a memory estimate; it samples and trains', { skip: needsFixture() }, async () => {
  const { code, out } = await doctor(referenceSd);
  assert.equal(code, 0, out);
  assert.match(out, /model +a custom Stable Diffusion UNet \(cross-attention 32\); prediction epsilon, timestep spacing leading/);
  assert.match(out, /exporter +pytorch [\d.]+, opset 17, module-scoped node names \(TorchScript exporter\)/);
  assert.match(out, /shapes +batch free, latents free, text length free, int64 timestep per row/);
  assert.match(out, /fused ops +none/);
  assert.match(out, /LoRA +32 layers found by node names: down_blocks\.0 8, mid_block 8, up_blocks\.1 16; e\.g\. PEFT unet\.down_blocks\.0\.attentions\.0\.transformer_blocks\.0\.attn1\.to_q\.lora_A\.weight, kohya lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q\.lora_down\.weight/);
  assert.match(out, /memory +about [\d.]+ GiB at train_batch_size 1, sample_batch_size 1, 64x64 latents/);
  assert.match(out, /can sample +yes\n +can train +yes/);
});

test('a cancelled check stops before its next phase', async () => {
  const ctl = new AbortController();
  const phases: string[] = [];
  await assert.rejects(diagnoseModel(TINY, { signal: ctl.signal, onProgress: (m) => { phases.push(m); if (m.startsWith('sampling')) ctl.abort(); } }), { name: 'AbortError' });
  assert.deepEqual(phases, ['reading the UNet', 'sampling one step on the CPU'], 'the training graph was never built');
});

test('the embedded tiny model samples and trains; a static-batch export says what it fixes', { skip: needsFixture() }, async () => {
  const tiny = await diagnoseModel(TINY);
  assert.ok(tiny.canSample && tiny.canTrain, formatModelReport(tiny).join('\n'));
  const fixed = await diagnoseModel(variantFolder(withStaticShapes(loadModel(path.join(referenceSd, 'unet/model.onnx')), { batch: 2 })));
  assert.ok(fixed.canSample && fixed.canTrain, formatModelReport(fixed).join('\n'));
  assert.equal(fact(fixed, 'shapes'), 'batch fixed at 2, latents fixed at 16x16, text length fixed at 77, int64 timestep per row');
  assert.match(fact(fixed, 'memory'), /16x16 latents/);
});

test('a truncated UNet: cannot sample or train, the file named, and what to do', { skip: needsFixture() }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-corrupt-'));
  try {
    for (const e of fs.readdirSync(referenceSd)) if (e !== 'unet') fs.symlinkSync(path.join(referenceSd, e), path.join(dir, e));
    fs.mkdirSync(path.join(dir, 'unet'));
    fs.writeFileSync(path.join(dir, 'unet/model.onnx'), fs.readFileSync(path.join(referenceSd, 'unet/model.onnx')).subarray(0, 4000));
    const { code, out } = await doctor(dir);
    assert.equal(code, 1);
    assert.match(out, /can sample +no[^\n]*\n +can train +no/);
    assert.match(out, /ERROR \[model\] .*unet\/model\.onnx is not a valid ONNX model \(truncated/);
    assert.match(out, /what to do: re-export the UNet \(optimum-cli export onnx/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('a folder that is not a model lists every missing part; a missing folder says so', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-empty-'));
  try {
    fs.writeFileSync(path.join(dir, 'model_index.json'), '{}');
    const r = await diagnoseModel(dir);
    assert.ok(!r.canSample && !r.canTrain);
    const msgs = r.findings.map((f) => f.message).join('\n');
    for (const f of ['unet/model.onnx: missing', 'text_encoder/model.onnx: missing', 'scheduler/scheduler_config.json: missing']) assert.ok(msgs.includes(f), msgs);
    assert.ok(r.findings.every((f) => f.fix.includes('diffusers/optimum layout')));
    const none = await diagnoseModel(path.join(dir, 'nope'));
    assert.match(none.findings[0].message, /^folder .*nope does not exist$/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('training that cannot work here is named with what to do: too little memory, LoRA targets the model lacks', { skip: needsFixture() }, async () => {
  const small = await diagnoseModel(TINY, { availableBytes: 2 ** 20 });
  assert.ok(small.canSample && !small.canTrain);
  const mem = small.findings.find((f) => f.area === 'memory')!;
  assert.match(mem.message, /Not enough memory for this DDPO run: it needs about .* but only 0\.00 GB is available/);
  assert.match(mem.fix, /lower train_batch_size, sample_batch_size or latent_size/);
  const targets = await diagnoseModel(TINY, { ddpo: { lora_target_modules: ['to_nothing'] } });
  assert.ok(targets.canSample && !targets.canTrain);
  assert.ok(targets.findings.some((f) => f.area === 'train' && /to_nothing/.test(f.message) && /lora_target_modules/.test(f.fix)), JSON.stringify(targets.findings));
});

test('New Experiment\'s worker job runs the same check at the preset\'s settings and refuses malformed params', { skip: needsFixture() }, async () => {
  const { handlers } = await import('../../../src/worker/handlers');
  const h = handlers.checkModel;
  const messages: string[] = [];
  const ctx = { signal: new AbortController().signal, progress: (p: { message?: string }) => messages.push(p.message ?? ''), log: () => undefined } as unknown as Parameters<typeof h.run>[1];
  const r = await h.run(h.parse({ modelDir: TINY, ddpo: { train_batch_size: 2, sample_batch_size: 2 } }), ctx);
  assert.ok(r.canSample && r.canTrain);
  assert.match(fact(r, 'memory'), /train_batch_size 2, sample_batch_size 2/);
  const bad = await h.run(h.parse({ modelDir: TINY, ddpo: { train_batch_size: 2 } }), ctx);
  assert.ok(bad.canSample && !bad.canTrain);
  assert.match(bad.findings[0].message, /"train_batch_size" must divide sample_batch_size \(1\), got 2/);
  assert.deepEqual(messages.slice(0, 3), ['reading the UNet', 'sampling one step on the CPU', 'building the training graph']);
  assert.throws(() => h.parse({ modelDir: 'relative/dir' }), /"modelDir" must be an absolute path/);
  assert.throws(() => h.parse({ modelDir: TINY, ddpo: [1] }), /"ddpo" must be an object/);
});

test('a model that cannot sample is not reported as trainable, even though its training graph builds', async () => {
  // DDPO trains on its own samples: a broken VAE decoder stops training as surely as a broken UNet
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-vae-'));
  try {
    for (const e of fs.readdirSync(TINY)) if (e !== 'vae_decoder') fs.symlinkSync(path.join(TINY, e), path.join(dir, e));
    fs.mkdirSync(path.join(dir, 'vae_decoder'));
    fs.writeFileSync(path.join(dir, 'vae_decoder/model.onnx'), fs.readFileSync(path.join(TINY, 'vae_decoder/model.onnx')).subarray(0, 200));
    const r = await diagnoseModel(dir);
    assert.deepEqual({ canSample: r.canSample, canTrain: r.canTrain }, { canSample: false, canTrain: false });
    assert.ok(r.findings.some((f) => f.area === 'sample' && f.level === 'error' && f.message.includes('vae_decoder')), JSON.stringify(r.findings));
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
