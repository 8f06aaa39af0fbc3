import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EMBEDDED_MODEL_ID, experimentModelDir } from '../../../src/core/experiment/modelDir';
import { newExperiment } from '../../../src/core/experiment/schema';

const experimentDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-modeldir-'));
const noEmbedded = (): string => assert.fail('the embedded folder was asked for');

test('the embedded model\'s id runs on the embedded folder, whatever path (if any) experiment.json stored', () => {
  for (const baseModel of [{ id: EMBEDDED_MODEL_ID }, { id: EMBEDDED_MODEL_ID, path: '/an/old/extension/folder/media/tiny-model' }]) {
    assert.equal(experimentModelDir(newExperiment('e', { baseModel }), experimentDir, () => '/ext/media/tiny-model'), '/ext/media/tiny-model');
  }
});

test('any other model runs on baseModel.path, resolved against the experiment folder', () => {
  fs.mkdirSync(path.join(experimentDir, 'model'), { recursive: true });
  assert.equal(experimentModelDir(newExperiment('e', { baseModel: { id: 'sd', path: 'model' } }), experimentDir, noEmbedded), path.join(experimentDir, 'model'));
  assert.equal(experimentModelDir(newExperiment('e', { baseModel: { id: 'sd', path: experimentDir } }), experimentDir, noEmbedded), experimentDir);
});

test('a model without a usable folder names experiment.json and the field to fix', () => {
  const file = path.join(experimentDir, 'experiment.json');
  assert.throws(() => experimentModelDir(newExperiment('e', { baseModel: { id: 'sd' } }), experimentDir, noEmbedded), (e: Error) => e.message.startsWith(`${file}: "baseModel.path" is not set`) && e.message.includes(EMBEDDED_MODEL_ID));
  assert.throws(() => experimentModelDir(newExperiment('e', { baseModel: { id: 'sd', path: 'missing' } }), experimentDir, noEmbedded), (e: Error) => e.message.startsWith(`${file}: "baseModel.path" names ${path.join(experimentDir, 'missing')}, which does not exist`));
});
