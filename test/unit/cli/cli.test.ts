import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CliIO } from '../../../src/cli/command';
import { closestName, parseFlags } from '../../../src/cli/command';
import { commands } from '../../../src/cli/commands';
import { runCli } from '../../../src/cli/dispatch';
import { readMetrics } from '../../../src/core/ddpo/metrics';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { EMBEDDED_MODEL_ID } from '../../../src/core/experiment/modelDir';
import { RUN_LOCK_FILE } from '../../../src/core/experiment/runLock';
import { needsTinyModel } from '../fixtures';

const MODEL = path.resolve(__dirname, '../../../media/tiny-model');
const noModel = needsTinyModel();

async function ddpo(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), progress: () => undefined, signal: new AbortController().signal };
  const code = await runCli(argv, io, commands);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('--help lists every registered command', async () => {
  const r = await ddpo('--help');
  assert.equal(r.code, 0);
  for (const c of commands) assert.ok(r.out.includes(c.path.join(' ')), `missing ${c.path.join(' ')}`);
});

test('every command has its own --help text', async () => {
  for (const c of commands) {
    const r = await ddpo(...c.path, '--help');
    assert.equal(r.code, 0);
    assert.ok(r.out.includes(`ddpo ${c.path.join(' ')}`), `usage of ${c.path.join(' ')} should show how to call it: ${r.out}`);
  }
});

test('experiments new then list shows the experiment; a second new with the same name fails', async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cli-'));
  assert.match((await ddpo('experiments', 'list', '--workspace', ws)).out, /No experiments/);
  const created = await ddpo('experiments', 'new', 'cats', '--workspace', ws, '--prompt', 'a cat', '--prompt', 'a dog');
  assert.equal(created.code, 0, created.err);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(ws, '.ddpo', 'cats', 'experiment.json'), 'utf8')).prompts, ['a cat', 'a dog'], 'every --prompt is kept');
  const list = await ddpo('experiments', 'list', '--workspace', ws);
  assert.equal(list.code, 0);
  assert.match(list.out, /cats .*2 prompt/);
  const again = await ddpo('experiments', 'new', 'cats', '--workspace', ws);
  assert.equal(again.code, 1);
  assert.match(again.err, /already exists/);
});

test('experiments new --reward-prior records where the reward model starts; an unknown prior, or one the backbone cannot run, is refused before anything is written', async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cli-'));
  const created = await ddpo('experiments', 'new', 'warm', '--workspace', ws, '--reward-backbone', 'embedded:tiny-clip', '--reward-prior', 'clip_score');
  assert.equal(created.code, 0, created.err);
  const json = JSON.parse(fs.readFileSync(path.join(ws, '.ddpo', 'warm', 'experiment.json'), 'utf8'));
  assert.equal(json.rewardPrior, 'clip_score');
  assert.deepEqual(json.rewardBackbone, { id: 'embedded:tiny-clip' });
  const bad = await ddpo('experiments', 'new', 'typo', '--workspace', ws, '--reward-prior', 'aesthetics');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown prior "aesthetics"; use one of aesthetic, clip_score, shape_taste/);
  assert.ok(!fs.existsSync(path.join(ws, '.ddpo', 'typo')));
  // a prior the backbone cannot run (aesthetic needs 768-wide CLIP embeddings; the embedded model's default is the built-in features)
  const misfit = await ddpo('experiments', 'new', 'misfit', '--workspace', ws, '--base-model', 'embedded:tiny-shapes', '--reward-prior', 'aesthetic');
  assert.equal(misfit.code, 2);
  assert.match(misfit.err, /--reward-prior aesthetic does not fit the reward backbone built-in shape features: it takes shape_taste; or leave --reward-prior out to start cold/);
  assert.ok(!fs.existsSync(path.join(ws, '.ddpo', 'misfit')));
  const tiny = await ddpo('experiments', 'new', 'misfit', '--workspace', ws, '--reward-backbone', 'embedded:tiny-clip', '--reward-prior', 'shape_taste');
  assert.match(tiny.err, /does not fit the reward backbone embedded tiny-clip: it takes clip_score;/);
  // a Hub backbone not downloaded yet is checked when it trains
  assert.equal((await ddpo('experiments', 'new', 'hub', '--workspace', ws, '--reward-prior', 'aesthetic')).code, 0);
  const cold = await ddpo('experiments', 'new', 'cold', '--workspace', ws);
  assert.equal(JSON.parse(fs.readFileSync(path.join(ws, '.ddpo', 'cold', 'experiment.json'), 'utf8')).rewardPrior, undefined, cold.err);
});

test('list exits 1 and names the reason when an experiment is broken', async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cli-'));
  fs.mkdirSync(path.join(ws, '.ddpo', 'broken'), { recursive: true });
  fs.writeFileSync(path.join(ws, '.ddpo', 'broken', 'experiment.json'), 'not json');
  const r = await ddpo('experiments', 'list', '--workspace', ws);
  assert.equal(r.code, 1);
  assert.match(r.out, /broken {2}ERROR: not valid JSON/);
});

test('unknown commands and bad names exit non-zero with a hint', async () => {
  const r = await ddpo('trian');
  assert.equal(r.code, 2);
  assert.match(r.err, /Unknown command "trian".*ddpo --help/);
  const sub = await ddpo('experiments', 'delete');
  assert.match(sub.err, /experiments list, experiments new/);
  const bad = await ddpo('experiments', 'new', '../evil', '--workspace', os.tmpdir());
  assert.equal(bad.code, 1);
  assert.match(bad.err, /Invalid experiment name/);
});

test('version prints the extension and onnxruntime versions', async () => {
  const r = await ddpo('version');
  assert.equal(r.code, 0);
  assert.match(r.out, /^ddpo-studio \d+\.\d+\.\d+/);
  assert.match(r.out, /onnxruntime-node 1\.\d+/);
});

test('a mistyped flag is refused with exit 2, naming the closest known flag, before anything runs', async () => {
  const r = await ddpo('generate', '--model', '/nonexistent-model', '--prompt', 'x', '--out', '/nonexistent-out', '--stpes', '3');
  assert.equal(r.code, 2);
  assert.match(r.err, /^ddpo generate: unknown flag --stpes; did you mean --steps\?$/);
  const t = await ddpo('train', '--experiment', '/nonexistent', '--resmue');
  assert.equal(t.code, 2);
  assert.match(t.err, /unknown flag --resmue; did you mean --resume\?/);
  // a single dash is a mistake too
  assert.match((await ddpo('demo', '-quick')).err, /unknown flag -quick; did you mean --quick\?/);
});

test('every command refuses a flag it does not declare, listing the ones it takes', async () => {
  for (const c of commands) {
    const r = await ddpo(...c.path, '--zzzzqqq');
    assert.equal(r.code, 2, `ddpo ${c.path.join(' ')} accepted --zzzzqqq`);
    const known = Object.keys(c.flags);
    assert.match(r.err, known.length ? new RegExp(`unknown flag --zzzzqqq; this command takes --${known[0]}`) : /takes no flags/, c.path.join(' '));
  }
});

test('a value outside a flag\'s allowed words, a missing value or a non-number is refused with what is allowed', async () => {
  const head = await ddpo('reward', 'train', '--experiment', '/nonexistent', '--head', 'bogus');
  assert.equal(head.code, 2);
  assert.match(head.err, /--head must be linear or mlp, got 'bogus'/);
  const noise = await ddpo('reward', 'simulate', '--noise', 'gaussian');
  assert.equal(noise.code, 2);
  assert.match(noise.err, /--noise must be bradley-terry or uniform/);
  const missing = await ddpo('train', '--experiment');
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--experiment needs a value/);
  const swallowed = await ddpo('train', '--experiment', '--resume');
  assert.match(swallowed.err, /--experiment needs a value/);
  const nan = await ddpo('reward', 'train', '--experiment', '/nonexistent', '--hidden', 'big');
  assert.equal(nan.code, 2);
  assert.match(nan.err, /--hidden must be an integer >= 1, got 'big'/);
  const boolWithValue = await ddpo('experiments', 'list', '--json=yes');
  assert.equal(boolWithValue.code, 2);
  assert.match(boolWithValue.err, /--json takes no value/);
});

test('a stray word (an unquoted prompt) is refused instead of ignored', async () => {
  const r = await ddpo('generate', '--model', '/nonexistent', '--prompt', 'a', 'red', 'cat', '--out', '/nonexistent-out');
  assert.equal(r.code, 2);
  assert.match(r.err, /unexpected argument "red".*quotes/);
  assert.equal((await ddpo('experiments', 'new', 'a', 'b')).code, 2);
});

test('a missing required flag or argument is refused with exit 2, naming each one, with the usage', async () => {
  const train = await ddpo('train');
  assert.equal(train.code, 2);
  assert.match(train.err, /^ddpo train: missing --experiment\nddpo train --experiment DIR/);
  const gen = await ddpo('generate', '--prompt', 'a cat');
  assert.equal(gen.code, 2);
  assert.match(gen.err, /^ddpo generate: missing --model and --out\n/);
  assert.match((await ddpo('export-lora', '--experiment', '/nonexistent')).err, /missing --format and --out/);
  const named = await ddpo('experiments', 'new', '--workspace', os.tmpdir());
  assert.equal(named.code, 2);
  assert.match(named.err, /^ddpo experiments new: missing NAME\nddpo experiments new NAME/);
  for (const c of commands.filter((x) => x.required?.length || x.args?.length)) {
    const r = await ddpo(...c.path);
    assert.equal(r.code, 2, `ddpo ${c.path.join(' ')} ran without ${[...(c.required ?? []), ...(c.args ?? [])].join(', ')}`);
    for (const f of c.required ?? []) assert.ok(r.err.includes(`--${f}`), `${c.path.join(' ')}: ${r.err}`);
    assert.ok(r.err.endsWith(c.usage), `${c.path.join(' ')} should show its usage`);
  }
});

test('a number below a flag\'s bound is refused naming the bound; a repeatable flag keeps every value', async () => {
  const seed = await ddpo('demo', '--seed', '-1');
  assert.equal(seed.code, 2);
  assert.match(seed.err, /--seed must be an integer >= 0, got '-1'/);
  const count = await ddpo('generate', '--model', '/nonexistent', '--prompt', 'x', '--out', '/nonexistent-out', '--count', '0');
  assert.equal(count.code, 2);
  assert.match(count.err, /--count must be an integer >= 1, got '0'/);
  assert.deepEqual(parseFlags(['--set', 'a=1', '--set=b=2'], { set: 'repeatable' }).flags, { set: ['a=1', 'b=2'] });
  assert.match((await ddpo('demo', '--set', 'no-equals-sign')).err, /--set expects key=value/);
});

test('negative numbers are values, abbreviations and swaps are suggested, = works', () => {
  const table = { seed: 'integer', negative: 'text', guidance: 'number', offline: 'boolean' } as const;
  assert.deepEqual(parseFlags(['--seed', '-3', '--guidance=-0.5', '--offline'], table).flags, { seed: -3, guidance: -0.5, offline: true });
  assert.equal(closestName('neg', Object.keys(table)), 'negative');
  assert.equal(closestName('guidence', Object.keys(table)), 'guidance');
  assert.equal(closestName('model', Object.keys(table)), undefined);
});

test('each command\'s usage names exactly the flags it declares', () => {
  for (const c of commands) {
    const inUsage = new Set([...c.usage.matchAll(/--([a-z][\w-]*)/g)].map((m) => m[1]).filter((f) => f !== 'help'));
    const declared = new Set(Object.keys(c.flags));
    const name = c.path.join(' ');
    assert.deepEqual([...declared].filter((f) => !inUsage.has(f)), [], `${name}: declared but not in its usage`);
    assert.deepEqual([...inUsage].filter((f) => !declared.has(f)), [], `${name}: in its usage but refused`);
  }
});

// A new experiment in a fresh workspace, with a tiny one-epoch ddpo.json.
async function newTrainableExperiment(...flags: string[]): Promise<string> {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-train-'));
  assert.equal((await ddpo('experiments', 'new', 'e', '--workspace', ws, '--prompt', 'a big red circle on a blue background', ...flags)).code, 0);
  const dir = path.join(ws, '.ddpo', 'e');
  fs.writeFileSync(ddpoLayout(dir).configFile, JSON.stringify({
    num_epochs: 1, sample_num_steps: 2, sample_batch_size: 2, sample_num_batches_per_epoch: 1, train_batch_size: 1, train_gradient_accumulation_steps: 2,
    eval_seeds: [], latent_size: 16, reward: 'jpeg_incompressibility',
  }));
  return dir;
}

test('ddpo train runs an experiment on the embedded model, named by its id with no path as the studio names it', { skip: noModel }, async () => {
  const dir = await newTrainableExperiment('--base-model', EMBEDDED_MODEL_ID);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'experiment.json'), 'utf8')).baseModel.path, undefined);
  const r = await ddpo('train', '--experiment', dir);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.includes(`sessions for ${MODEL}`), r.out);
  assert.deepEqual(readMetrics(ddpoLayout(dir).metricsFile).map((m) => m.epoch), [0]);
});

// The person counts epochs from 1, as the progress lines do; metrics.jsonl and checkpoints count from 0.
test('ddpo train says which epochs it trained counting from 1, and a resume with all of them done says so', { skip: noModel }, async () => {
  const dir = await newTrainableExperiment('--base-model', EMBEDDED_MODEL_ID);
  fs.writeFileSync(ddpoLayout(dir).configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(ddpoLayout(dir).configFile, 'utf8')), num_epochs: 2 }));
  const r = await ddpo('train', '--experiment', dir);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.split('\n').at(-1), `done: epochs 1..2; metrics in ${dir}/ddpo/metrics.jsonl`);
  const again = await ddpo('train', '--experiment', dir, '--resume');
  assert.equal(again.code, 0, again.err);
  assert.equal(again.out.split('\n').at(-1), `nothing to do: all 2 epochs of ${dir}/ddpo are done (raise num_epochs in ddpo.json to train on)`);
});

test('ddpo train on a model with no folder names experiment.json and the field to set', async () => {
  const dir = await newTrainableExperiment('--base-model', 'stable-diffusion-v1-5');
  const r = await ddpo('train', '--experiment', dir);
  assert.equal(r.code, 1);
  assert.ok(r.err.startsWith(`${path.join(dir, 'experiment.json')}: "baseModel.path" is not set`), r.err);
});

test('export-lora, reward train and train refuse an experiment another process holds, naming it, and write nothing', async () => {
  const dir = await newTrainableExperiment('--base-model', EMBEDDED_MODEL_ID);
  const ck = path.join(ddpoLayout(dir).checkpointsDir, 'epoch-000000');
  fs.mkdirSync(ck, { recursive: true });
  fs.writeFileSync(path.join(ck, 'state.json'), '{}');
  // pid 1 always runs, as a studio fine-tuning would
  fs.writeFileSync(path.join(dir, RUN_LOCK_FILE), JSON.stringify({ pid: 1, host: os.hostname(), since: '2026-01-01T00:00:00.000Z', what: 'DDPO Studio fine-tuning', token: 't' }));
  const held = `${dir} is in use by DDPO Studio fine-tuning (pid 1 on this machine, since 2026-01-01T00:00:00.000Z); wait for it to finish or stop it`;
  const out = path.join(path.dirname(dir), 'lora.safetensors');
  const exp = await ddpo('export-lora', '--experiment', dir, '--format', 'kohya', '--out', out);
  assert.equal(exp.code, 1);
  assert.ok(exp.err.includes(held), exp.err);
  assert.equal(fs.existsSync(out), false);
  const reward = await ddpo('reward', 'train', '--experiment', dir);
  assert.equal(reward.code, 1);
  assert.ok(reward.err.includes(held), reward.err);
  const train = await ddpo('train', '--experiment', dir, '--resume');
  assert.equal(train.code, 1);
  assert.ok(train.err.startsWith(held), train.err);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['.run.lock', 'ddpo', 'ddpo.json', 'experiment.json']);
});

test('a flag that takes one value given twice, or a count below its least, is a usage error, not a silent choice or a crash', async () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-cli-'));
  const twice = await ddpo('experiments', 'new', 'x', '--workspace', ws, '--workspace', ws + '-other');
  assert.equal(twice.code, 2);
  assert.match(twice.err, /--workspace is given twice; give it once/);
  const sim = await ddpo('reward', 'simulate', '--seeds', '0');
  assert.equal(sim.code, 2);
  assert.match(sim.err, /--seeds .*an integer >= 1/);
  const doctor = await ddpo('doctor', path.join(__dirname, '../../../media/tiny-model'), '--experiment', path.join(ws, 'typo'));
  assert.equal(doctor.code, 2);
  assert.match(doctor.err, /--experiment .*typo: no experiment\.json there; give an experiment folder/);
});

// `ddpo` alone is a mistake a script must see (exit 2, as every usage error), though it prints the help.
test('ddpo with no command prints the help and exits 2', async () => {
  const r = await ddpo();
  assert.equal(r.code, 2);
  assert.match(r.out, /^ddpo — DDPO Studio on the command line/);
});

// An integer flag given a fraction, or nothing after "=", is refused: never rounded, never read as 0 (a --epoch= with
// the value lost by a shell variable would otherwise export the first checkpoint).
test('an integer flag refuses a fraction and an empty value', async () => {
  const frac = await ddpo('generate', '--count', '2.5');
  assert.equal(frac.code, 2);
  assert.match(frac.err, /^ddpo generate: --count must be an integer >= 1, got '2\.5'$/);
  const empty = await ddpo('export-lora', '--epoch=');
  assert.equal(empty.code, 2);
  assert.match(empty.err, /^ddpo export-lora: --epoch must be an integer >= 0, got ''$/);
});

// Names every object has (constructor, toString) are not flags: refused as unknown like any other, not a crash.
test('a flag named like an object property is an unknown flag, exit 2', async () => {
  for (const f of ['--constructor', '--toString', '--__proto__']) {
    const r = await ddpo('train', f, 'x');
    assert.equal(r.code, 2, `${f}: ${r.err}`);
    assert.match(r.err, new RegExp(`^ddpo train: unknown flag ${f}; `));
  }
});

// Each flag a command cannot run without is refused by name when it alone is left out, the others given.
test('leaving out any one required flag is refused with exit 2, naming it', async () => {
  const required: [string[], string[]][] = [
    [['generate'], ['model', 'prompt', 'out']],
    [['reward', 'train'], ['experiment']],
    [['reward', 'eval'], ['experiment']],
    [['train'], ['experiment']],
    [['export-lora'], ['experiment', 'format', 'out']],
    [['export-preferences'], ['experiment', 'out']],
    [['bench', 'generate'], ['model']],
    [['bench', 'backbone'], ['backbone']],
  ];
  const value = (f: string) => (f === 'format' ? 'kohya' : f === 'prompt' ? 'a cat' : `/nonexistent-${f}`);
  for (const [cmd, flags] of required) {
    for (const left of flags) {
      const r = await ddpo(...cmd, ...flags.filter((f) => f !== left).flatMap((f) => [`--${f}`, value(f)]));
      assert.equal(r.code, 2, `ddpo ${cmd.join(' ')} without --${left}: ${r.err}`);
      assert.ok(r.err.startsWith(`ddpo ${cmd.join(' ')}: missing --${left}\n`), r.err);
    }
  }
});
