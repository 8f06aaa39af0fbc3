import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExperimentStore, experimentNameProblem, readExperiment } from '../../../src/core/experiment/store';
import { EXPERIMENT_SCHEMA_VERSION, ExperimentFormatError, parseExperiment } from '../../../src/core/experiment/schema';
import { buildStudioTree } from '../../../src/core/studio/treeModel';
import { readSummary } from '../../../src/core/studio/summary';

function workspace(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-ws-'));
}

test('a created experiment is a readable folder with experiment.json and shows in the list', async () => {
  const store = new ExperimentStore(workspace());
  await store.create('cats', { prompts: ['a cat'] });
  const file = path.join(store.root, 'cats', 'experiment.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(json.schemaVersion, EXPERIMENT_SCHEMA_VERSION);
  assert.equal(json.name, 'cats');
  assert.deepEqual(json.prompts, ['a cat']);
  assert.equal(typeof json.baseModel.id, 'string');
  const entries = await store.list();
  assert.deepEqual(entries.map((e) => [e.name, e.status]), [['cats', 'ok']]);
});

test('listing a workspace without .ddpo gives no experiments', async () => {
  assert.deepEqual(await new ExperimentStore(workspace()).list(), []);
});

test('creating an experiment that exists fails with a message naming it', async () => {
  const store = new ExperimentStore(workspace());
  await store.create('dogs');
  await assert.rejects(store.create('dogs'), /"dogs" already exists/);
});

test('names that could escape .ddpo or are awkward on disk are refused', async () => {
  const store = new ExperimentStore(workspace());
  for (const bad of ['..', '../x', 'a/b', '.hidden', '', 'x'.repeat(65), 'trailing.', 'sp ace']) {
    assert.ok(experimentNameProblem(bad), `should refuse ${JSON.stringify(bad)}`);
    await assert.rejects(store.create(bad), /Invalid experiment name/);
  }
  assert.equal(experimentNameProblem('watercolor-cats_v2.1'), null);
  assert.equal(fs.existsSync(path.join(store.workspace, 'x')), false);
});

test('malformed experiment.json files become error entries with the reason, others still list', async () => {
  const store = new ExperimentStore(workspace());
  await store.create('good');
  const write = (name: string, content: string | null) => {
    fs.mkdirSync(path.join(store.root, name), { recursive: true });
    if (content !== null) fs.writeFileSync(path.join(store.root, name, 'experiment.json'), content);
  };
  write('broken-json', '{ "schemaVersion": 1, ');
  write('future', JSON.stringify({ schemaVersion: 99, name: 'future', createdAt: '', baseModel: { id: 'x' }, prompts: [] }));
  write('bad-prompts', JSON.stringify({ schemaVersion: 1, name: 'bad-prompts', createdAt: '', baseModel: { id: 'x' }, prompts: [1, 2] }));
  write('empty-folder', null);
  const entries = await store.list();
  const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
  assert.equal(byName.good.status, 'ok');
  const reason = (n: string) => (byName[n].status === 'error' ? (byName[n] as { reason: string }).reason : 'ok');
  assert.match(reason('broken-json'), /not valid JSON/);
  assert.match(reason('future'), /newer than this DDPO Studio/);
  assert.match(reason('bad-prompts'), /"prompts" must be an array of strings/);
  assert.match(reason('empty-folder'), /no experiment.json/);
  const tree = buildStudioTree(entries, (e) => readSummary(e.dir, false));
  assert.deepEqual(tree.map((n) => [n.label, n.kind]), [['bad-prompts', 'error'], ['broken-json', 'error'], ['empty-folder', 'error'], ['future', 'error'], ['good', 'experiment']]);
  assert.match(tree[1].description ?? '', /not valid JSON/);
});

test('an edit keeps unknown settings and top-level keys written by newer code or by hand, and concurrent edits all land', async () => {
  const store = new ExperimentStore(workspace());
  await store.create('keep');
  await store.update('keep', (exp) => ({ ...exp, settings: { ...exp.settings, loraRank: 8 } }));
  assert.equal((await store.read('keep')).settings.loraRank, 8);
  const file = path.join(store.dirOf('keep'), 'experiment.json');
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), notes: 'my own notes', futureField: { a: 1 } }));
  // two prompts added at once (two quick messages from the panel): both are kept, and so are the keys it does not know
  await Promise.all(['a cat', 'a dog'].map((p) => store.update('keep', (exp) => ({ ...exp, prompts: [...exp.prompts, p] }))));
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.deepEqual([raw.prompts, raw.notes, raw.futureField, raw.settings.loraRank], [['a cat', 'a dog'], 'my own notes', { a: 1 }, 8]);
});

test('parseExperiment fills default settings for an older file without them', () => {
  const exp = parseExperiment(JSON.stringify({ schemaVersion: 1, name: 'n', createdAt: 't', baseModel: { id: 'sd' }, prompts: [] }), 'f');
  assert.equal(exp.settings.steps, 20);
  assert.throws(() => parseExperiment('[]', 'f.json'), /f.json: expected a JSON object/);
});


test('readExperiment reads any experiment folder; a folder without experiment.json says how to create one', async () => {
  const store = new ExperimentStore(workspace());
  await store.create('cats', { prompts: ['a cat'] });
  assert.deepEqual(await readExperiment(store.dirOf('cats')), await store.read('cats'));
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-noexp-'));
  await assert.rejects(readExperiment(empty), (e: Error) => e instanceof ExperimentFormatError && e.message.startsWith(path.join(empty, 'experiment.json')) && /New Experiment.*ddpo experiments new/.test(e.message));
  fs.writeFileSync(path.join(empty, 'experiment.json'), '{ "schemaVersion": 1, ');
  await assert.rejects(readExperiment(empty), (e: Error) => e instanceof ExperimentFormatError && /not valid JSON/.test(e.message));
});

test('a bad experiment.json field is named in the error: settings, baseModel.path, rewardPrior, a newer schemaVersion', () => {
  const base = { schemaVersion: 1, name: 'n', createdAt: 't', baseModel: { id: 'sd' }, prompts: [] };
  const reason = (over: Record<string, unknown>) => {
    try { parseExperiment(JSON.stringify({ ...base, ...over }), 'e.json'); } catch (e) { return (e as ExperimentFormatError).reason; }
    return 'read without complaint';
  };
  assert.equal(reason({ settings: { steps: 20, guidanceScale: 'high' } }), '"settings.guidanceScale" must be a number');
  assert.equal(reason({ baseModel: { id: 'sd', path: 42 } }), '"baseModel.path" must be a string');
  assert.match(reason({ rewardPrior: '' }), /^"rewardPrior" must be the name of a built-in prior/);
  assert.match(reason({ rewardPrior: 3 }), /^"rewardPrior" must be the name of a built-in prior/);
  // one version ahead is the common case (a newer studio wrote it); it must be refused, not half-read
  assert.match(reason({ schemaVersion: EXPERIMENT_SCHEMA_VERSION + 1 }), /newer than this DDPO Studio understands.*update the extension/);
});

test('hidden folders under .ddpo (a creation cut short) are not listed as experiments', async () => {
  const store = new ExperimentStore(workspace());
  await store.create('cats');
  fs.mkdirSync(path.join(store.root, '.new-dogs-x1y2'));
  assert.deepEqual((await store.list()).map((e) => [e.name, e.status]), [['cats', 'ok']]);
});
