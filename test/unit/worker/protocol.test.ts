import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError, assertNever, parseHostToWorker, parsePanelMessage, parseWorkerToHost } from '../../../src/protocol';

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
