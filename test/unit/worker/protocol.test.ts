import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError, assertNever, parseHostToWorker, parseJobResult, parsePanelMessage, parseWorkerToHost } from '../../../src/protocol';
import type { ResultOf, WorkerRequestKind } from '../../../src/protocol';

test('webview messages with the right shape pass, anything else is rejected with the field named', () => {
  assert.deepEqual(parsePanelMessage('experiment', { type: 'addPrompt', prompt: 'a cat' }), { type: 'addPrompt', prompt: 'a cat' });
  assert.deepEqual(parsePanelMessage('experiment', { type: 'ready' }), { type: 'ready' });
  assert.throws(() => parsePanelMessage('experiment', { type: 'addPrompt', prompt: 42 }), /field "prompt" should be string/);
  assert.throws(() => parsePanelMessage('experiment', { type: 'rm -rf' }), /unknown type "rm -rf"/);
  assert.throws(() => parsePanelMessage('experiment', 'ready'), ProtocolError);
  assert.throws(() => parsePanelMessage('experiment', null), ProtocolError);
  assert.throws(() => parsePanelMessage('experiment', { type: 'toString' }), /unknown type/);
});

test('worker-side validation rejects requests without a numeric id or object params', () => {
  assert.equal(parseHostToWorker({ type: 'request', id: 1, kind: 'ping', params: {} }).type, 'request');
  assert.throws(() => parseHostToWorker({ type: 'request', id: '1', kind: 'ping', params: {} }), /"id" should be number/);
  assert.throws(() => parseHostToWorker({ type: 'request', id: 1, kind: 'ping', params: [] }), /"params" should be object/);
  assert.throws(() => parseHostToWorker({ type: 'cancel', id: Number.NaN }), /"id"/);
});

test('host-side validation requires an error on failed replies', () => {
  assert.equal(parseWorkerToHost({ type: 'reply', id: 3, ok: true, result: 1 }).type, 'reply');
  assert.throws(() => parseWorkerToHost({ type: 'reply', id: 3, ok: false }), /without a valid "error"/);
  assert.equal(parseWorkerToHost({ type: 'reply', id: 3, ok: false, error: { code: 'failed', message: 'x' } }).type, 'reply');
});

test('a message no case handles fails loudly, naming it', () => {
  assert.throws(() => assertNever({ type: 'later' } as never, 'worker message'), /^Error: unhandled worker message {"type":"later"}$/);
  assert.throws(() => assertNever({ type: 'later' } as never), /^Error: unhandled message/);
});

// One valid result of each request kind; typed, so a new kind or a new field of a result does not compile until it is here.
const VALID_RESULTS: { [K in WorkerRequestKind]: ResultOf<K> } = {
  ping: { pid: 1, uptimeSeconds: 2 },
  status: { pid: 1, node: 'v20.0.0', platform: 'linux', arch: 'x64', onnxruntime: '1.29.0', executionProviders: ['cpu'], missingExecutionProviders: [], chosenExecutionProvider: 'cpu', uptimeSeconds: 2 },
  selfTest: { completed: 3 },
  generatePairs: { pairs: [] },
  rate: { ratingId: 'r1', rated: 1, consistency: null, repeats: 0, last: null, ratedPairs: ['p1'], dueRepeats: [] },
  undo: { rated: 0, consistency: null, repeats: 0, last: null, ratedPairs: [], dueRepeats: [] },
  trainReward: { accuracy: 0.75, heldOut: 4, comparisons: 20, summary: 'ok', backbone: 'tiny' },
  startFineTune: { firstEpoch: 0, lastEpoch: 3, algorithm: 'ddpo' },
  stopFineTune: { stopped: true },
  compare: { compareId: 'c1', pairs: 8 },
  exportLora: { file: 'exports/lora.safetensors', epoch: 3 },
  downloadModel: { dir: '/models/x' },
  checkModel: { dir: '/models/x', facts: [], canSample: true, canTrain: false, findings: [] },
};

test('a worker result that lacks a field the host reads is refused by kind and field name, for every request kind', () => {
  for (const kind of Object.keys(VALID_RESULTS) as WorkerRequestKind[]) {
    const valid = VALID_RESULTS[kind] as unknown as Record<string, unknown>;
    assert.deepEqual(parseJobResult(kind, valid), valid, `a whole ${kind} result passes`);
    for (const field of Object.keys(valid)) {
      const { [field]: _dropped, ...lacking } = valid;
      assert.throws(() => parseJobResult(kind, lacking), (e: Error) => e instanceof ProtocolError && e.message.startsWith(`worker result of "${kind}": field "${field}" should be `), `${kind} without ${field}`);
    }
  }
  // a field that may be null (a NaN accuracy, no repeat yet, nothing to undo) passes as null, but not as another type
  assert.doesNotThrow(() => parseJobResult('trainReward', { ...VALID_RESULTS.trainReward, accuracy: null }));
  assert.doesNotThrow(() => parseJobResult('trainReward', { ...VALID_RESULTS.trainReward, accuracy: NaN }), 'NaN as the fork channel carries it');
  assert.throws(() => parseJobResult('rate', { ...VALID_RESULTS.rate, last: 'r1' }), /field "last" should be object\|null/);
  assert.throws(() => parseJobResult('status', { ...VALID_RESULTS.status, onnxruntime: 1 }), /field "onnxruntime" should be string\|null/);
});
