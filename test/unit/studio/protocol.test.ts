import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PANEL_TO_HOST_SHAPES, parsePanelMessage, ProtocolError, type PanelKind } from '../../../src/protocol';

test('rating panel and dashboard messages are validated field by field; nothing carries a path', () => {
  assert.deepEqual(parsePanelMessage('rating', { type: 'rate', itemId: 'pair-0-x', choice: 'left', elapsedMs: 812 }), { type: 'rate', itemId: 'pair-0-x', choice: 'left', elapsedMs: 812 });
  assert.throws(() => parsePanelMessage('rating', { type: 'rate', itemId: 'pair-0-x', choice: 'left' }), /"elapsedMs" should be number/);
  assert.throws(() => parsePanelMessage('rating', { type: 'rate', itemId: 7, choice: 'left', elapsedMs: 1 }), /"itemId" should be string/);
  assert.throws(() => parsePanelMessage('rating', { type: 'rate', itemId: 'x', choice: 'left', elapsedMs: Infinity }), /"elapsedMs"/);
  assert.equal(parsePanelMessage('rating', { type: 'undo' }).type, 'undo');
  for (const type of ['stopRun', 'resumeRun']) assert.equal(parsePanelMessage('dashboard', { type }).type, type);
  for (const panel of ['rating', 'dashboard', 'experiment'] as const) assert.throws(() => parsePanelMessage(panel, { type: 'readFile', path: '/etc/passwd' }), /unknown type/);
});

// For each panel: a message it sends, one another panel sends, one malformed, one with a field of the wrong type.
const CASES: Record<PanelKind, { own: object; other: object[]; wrongType: object; malformed: unknown[] }> = {
  rating: {
    own: { type: 'rate', itemId: 'pair-0-x', choice: 'tie', elapsedMs: 3 },
    other: [{ type: 'stopRun' }, { type: 'resumeRun' }, { type: 'addPrompt', prompt: 'a cat' }, { type: 'openExperimentFile' }],
    wrongType: { type: 'rate', itemId: 'pair-0-x', choice: 'left', elapsedMs: '3' },
    malformed: [null, 'undo', ['undo'], { itemId: 'x' }, { type: 7 }],
  },
  dashboard: {
    own: { type: 'stopRun' },
    other: [{ type: 'rate', itemId: 'x', choice: 'left', elapsedMs: 1 }, { type: 'undo' }, { type: 'addPrompt', prompt: 'a cat' }, { type: 'openExperimentFile' }],
    wrongType: { type: ['stopRun'] },
    malformed: [null, 'stopRun', [], { prompt: 'x' }, { type: 'toString' }],
  },
  experiment: {
    own: { type: 'addPrompt', prompt: 'a watercolor cat' },
    other: [{ type: 'rate', itemId: 'x', choice: 'left', elapsedMs: 1 }, { type: 'undo' }, { type: 'stopRun' }, { type: 'resumeRun' }],
    wrongType: { type: 'addPrompt', prompt: ['a cat'] },
    malformed: [null, 'ready', [{ type: 'ready' }], {}, { type: undefined }],
  },
};

test('each panel accepts its own messages and rejects another panel\'s, a malformed one and a field of the wrong type', () => {
  for (const [panel, c] of Object.entries(CASES) as [PanelKind, (typeof CASES)[PanelKind]][]) {
    assert.deepEqual(parsePanelMessage(panel, c.own), c.own, panel);
    assert.equal(parsePanelMessage(panel, { type: 'ready' }).type, 'ready', `${panel} answers the ready handshake`);
    for (const m of c.other) assert.throws(() => parsePanelMessage(panel, m), new RegExp(`${panel} panel message: unknown type "${(m as { type: string }).type}"`), `${panel} rejects ${JSON.stringify(m)}`);
    assert.throws(() => parsePanelMessage(panel, c.wrongType), ProtocolError, `${panel} rejects ${JSON.stringify(c.wrongType)}`);
    for (const m of c.malformed) assert.throws(() => parsePanelMessage(panel, m), ProtocolError, `${panel} rejects ${JSON.stringify(m)}`);
  }
});

// Shared on purpose: the ready handshake (every panel), and the walkthrough's button, one component in the dashboard
// and the experiment panel.
const SHARED: Record<string, string[]> = { runStep: ['dashboard', 'experiment'] };

test('no message type is shared by two panels except the ready handshake and the walkthrough\'s button', () => {
  const senders = new Map<string, string[]>();
  for (const [panel, table] of Object.entries(PANEL_TO_HOST_SHAPES)) {
    for (const type of Object.keys(table)) if (type !== 'ready') senders.set(type, [...(senders.get(type) ?? []), panel]);
  }
  for (const [type, panels] of senders) assert.deepEqual(panels, SHARED[type] ?? panels.slice(0, 1), `"${type}" is sent by ${panels.join(' and ')}`);
});
