import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWebviewMessage } from '../../../src/protocol';

test('rating panel and dashboard messages are validated field by field; nothing carries a path', () => {
  assert.deepEqual(parseWebviewMessage({ type: 'rate', itemId: 'pair-0-x', choice: 'left', elapsedMs: 812 }), { type: 'rate', itemId: 'pair-0-x', choice: 'left', elapsedMs: 812 });
  assert.throws(() => parseWebviewMessage({ type: 'rate', itemId: 'pair-0-x', choice: 'left' }), /"elapsedMs" should be number/);
  assert.throws(() => parseWebviewMessage({ type: 'rate', itemId: 7, choice: 'left', elapsedMs: 1 }), /"itemId" should be string/);
  assert.throws(() => parseWebviewMessage({ type: 'rate', itemId: 'x', choice: 'left', elapsedMs: Infinity }), /"elapsedMs"/);
  for (const type of ['undo', 'stopRun', 'resumeRun']) assert.equal(parseWebviewMessage({ type }).type, type);
  assert.throws(() => parseWebviewMessage({ type: 'readFile', path: '/etc/passwd' }), /unknown type/);
});
