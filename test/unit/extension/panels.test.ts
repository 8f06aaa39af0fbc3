// Each of the three panels, opened through its real VS Code wiring over a fake `vscode`: a message from its webview
// that is malformed, or meant for another panel, is logged and dropped; a valid one does its work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { created, installFakeVscode, Uri, workspace, type FakeWebviewPanel } from './fakeVscode';
import { ExperimentStore } from '../../../src/core/experiment/store';
import type { Services } from '../../../src/extension/services';
import type { DashboardView } from '../../../src/protocol';

installFakeVscode();
// after the fake is installed: these modules import `vscode`
const load = async () => ({
  dashboard: await import('../../../src/extension/panels/dashboardPanel'),
  experiment: await import('../../../src/extension/panels/experimentPanel'),
  rating: await import('../../../src/extension/panels/ratingPanel'),
});

/** What the panels did to the rest of the extension. */
interface Effects { output: string[]; workerCalls: string[]; stopped: string[]; resumed: number; treeRefreshes: number }

function fakeServices(): { services: Services; effects: Effects } {
  const effects: Effects = { output: [], workerCalls: [], stopped: [], resumed: 0, treeRefreshes: 0 };
  const state = new Map<string, unknown>();
  const services = {
    context: { extensionUri: Uri.file(path.resolve(__dirname, '../../..')), workspaceState: { get: (k: string) => state.get(k), update: (k: string, v: unknown) => Promise.resolve(void state.set(k, v)) } },
    output: { appendLine: (l: string) => effects.output.push(l) },
    worker: { request: (kind: string) => { effects.workerCalls.push(kind); return new Promise(() => undefined); } },
    tree: { refresh: () => Promise.resolve(void effects.treeRefreshes++) },
    runs: { onDidChange: () => ({ dispose: () => undefined }), stop: (dir: string) => void effects.stopped.push(dir), isRunning: () => false, progressOf: () => undefined, algorithmOf: () => undefined },
  };
  return { services: services as unknown as Services, effects };
}

const settle = () => new Promise((r) => setTimeout(r, 20));
/** Waits until `done` holds, up to 5 s: a panel answers after reading files, later on a loaded machine. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !done(); i++) await settle();
}

/** Messages no panel accepts, and messages of the other panels. */
const NOT_A_MESSAGE: unknown[] = [null, 'ready', 42, [], {}, { type: 'bogus' }, { type: 'READY' }];
const OTHERS: Record<'rating' | 'dashboard' | 'experiment', unknown[]> = {
  rating: [{ type: 'rate', itemId: 'p1', choice: 'left', elapsedMs: 1 }, { type: 'undo' }],
  dashboard: [{ type: 'stopRun' }, { type: 'resumeRun' }],
  experiment: [{ type: 'addPrompt', prompt: 'an injected prompt' }, { type: 'openExperimentFile' }],
};
const others = (panel: keyof typeof OTHERS) => Object.entries(OTHERS).flatMap(([p, msgs]) => (p === panel ? [] : msgs));

/** Sends every message in `bad`, then checks that each was rejected by a log line and nothing else happened. */
async function expectAllRejected(panel: FakeWebviewPanel, effects: Effects, bad: unknown[], label: string): Promise<void> {
  for (const raw of bad) assert.doesNotThrow(() => panel.webview.send(raw), `${label}: ${JSON.stringify(raw)}`);
  await settle();
  const rejected = effects.output.filter((l) => /\[host\] rejected an? .*message/.test(l));
  assert.equal(rejected.length, bad.length, `${label}: one rejection line per bad message:\n${effects.output.join('\n')}`);
  assert.deepEqual(panel.webview.posted, [], `${label}: nothing was posted back`);
  assert.deepEqual([effects.workerCalls, effects.stopped, effects.resumed, effects.treeRefreshes], [[], [], 0, 0], `${label}: nothing was done`);
}

// A workspace holding the experiment 'cats' (one prompt, a model that is not there: the panels never load it).
async function experimentFolder(): Promise<{ ws: string; dir: string; store: ExperimentStore }> {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-panels-'));
  const store = new ExperimentStore(ws);
  await store.create('cats', { baseModel: { id: 'x', path: '/nowhere' }, prompts: ['a cat'] });
  return { ws, dir: store.dirOf('cats'), store };
}

test('the rating panel drops malformed messages and other panels\' messages, and answers "ready"', async () => {
  const { rating } = await load();
  const { dir } = await experimentFolder();
  const { services, effects } = fakeServices();
  rating.openRatingPanel(services, { mode: 'rate', experiment: 'cats', experimentDir: dir, target: 10 });
  const panel = created.at(-1)!;
  await expectAllRejected(panel, effects, [...NOT_A_MESSAGE, ...others('rating'), { type: 'rate', itemId: 7, choice: 'left', elapsedMs: 1 }, { type: 'rate', itemId: 'p1', choice: 'left' }], 'rating');
  panel.webview.send({ type: 'ready' });
  await settle();
  assert.ok(panel.webview.posted.some((m) => (m as { type: string }).type === 'rating'), JSON.stringify(panel.webview.posted));
  panel.dispose();
});

test('the dashboard drops malformed messages and other panels\' messages, and Stop reaches the run', async () => {
  const { dashboard } = await load();
  const { dir } = await experimentFolder();
  const { services, effects } = fakeServices();
  dashboard.openDashboardPanel(services, dir, () => void effects.resumed++);
  const panel = created.at(-1)!;
  // a Show-run without a run name is malformed too: logged like the rest, not silently ignored
  await expectAllRejected(panel, effects, [...NOT_A_MESSAGE, ...others('dashboard'), { type: 'showRun' }, { type: 'showRun', algorithm: 7 }, { type: 'runStep', step: ['rate'] }], 'dashboard');
  panel.webview.send({ type: 'stopRun' });
  panel.webview.send({ type: 'resumeRun' });
  assert.deepEqual([effects.stopped, effects.resumed], [[dir], 1]);
  panel.dispose();
});

test('the dashboard of a Diffusion-DPO run charts its implicit reward accuracy from metrics.jsonl, and switches to the DDPO run', async () => {
  const { dashboard } = await load();
  const { dir } = await experimentFolder();
  const line = (epoch: number, acc: number, held: number) => JSON.stringify({
    algorithm: 'diffusion-dpo', epoch, global_step: 8 * (epoch + 1), implicit_acc: acc, margin_mean: 0.1, loss: 0.6, pairs: 32, grad_norm: 1, model_mse: 1, ref_mse: 1, beta_dpo: 5000,
    data: { train: 32, held_out: 8, ties: 0, skips: 0, without_latents: 0, latents: 'stored' }, held_out: { implicit_acc: held, margin_mean: 0.2, loss: 0.5, pairs: 8 },
    seconds: { eval: 0, train: 1, held_out: 0, checkpoint: 0, total: 1 }, time: '2026-01-01T00:00:00Z',
  });
  fs.mkdirSync(path.join(dir, 'diffusion-dpo'));
  fs.writeFileSync(path.join(dir, 'diffusion-dpo', 'metrics.jsonl'), `${line(0, 0.5, 0.625)}\n${line(1, 0.75, 0.875)}\n`);
  fs.writeFileSync(path.join(dir, 'diffusion-dpo', 'status.json'), JSON.stringify({ state: 'done', algorithm: 'diffusion-dpo', epoch: 1 }));
  const { services } = fakeServices();
  dashboard.openDashboardPanel(services, dir, () => undefined);
  const panel = created.at(-1)!;
  const views = () => panel.webview.posted.filter((m): m is { type: 'dashboard'; view: DashboardView } => (m as { type: string }).type === 'dashboard').map((m) => m.view);
  panel.webview.send({ type: 'ready' });
  await until(() => views().length > 0);
  const v = views().at(-1)!;
  assert.equal(v.algorithm, 'diffusion-dpo', 'the only run is shown');
  assert.deepEqual(v.dpoPoints.map((p) => [p.epoch, p.implicitAcc, p.heldOutAcc]), [[0, 0.5, 0.625], [1, 0.75, 0.875]]);
  assert.equal(v.state, 'done');
  assert.equal(v.loop.epochsDone, 2, 'the walkthrough counts the epochs of the run shown');
  panel.webview.send({ type: 'showRun', algorithm: 'ddpo' });
  await until(() => views().at(-1)!.algorithm === 'ddpo');
  assert.equal(views().at(-1)!.algorithm, 'ddpo');
  assert.equal(views().at(-1)!.loop.epochsDone, 0, 'the DDPO run has no epochs');
  assert.deepEqual(views().at(-1)!.runs, ['ddpo', 'diffusion-dpo'], 'both runs offered once the DDPO one is shown');
  panel.dispose();
});

test('the experiment panel drops malformed messages and other panels\' messages, and adds a prompt', async () => {
  const { experiment } = await load();
  const { ws, store } = await experimentFolder();
  workspace.workspaceFolders = [{ uri: Uri.file(ws) }];
  const { services, effects } = fakeServices();
  await experiment.openExperimentPanel(services, 'cats');
  const panel = created.at(-1)!;
  await expectAllRejected(panel, effects, [...NOT_A_MESSAGE, ...others('experiment'), { type: 'addPrompt', prompt: 42 }, { type: 'addPrompt' }], 'experiment');
  assert.deepEqual((await store.read('cats')).prompts, ['a cat']);
  panel.webview.send({ type: 'addPrompt', prompt: 'a dog' });
  // the panel shows the new prompt; the tree redraws from its watch on experiment.json, not from the panel
  const shown = () => (panel.webview.posted.filter((m) => (m as { type: string }).type === 'experiment').at(-1) as { experiment: { prompts: string[] } } | undefined)?.experiment.prompts;
  await until(() => shown()?.length === 2);
  assert.deepEqual((await store.read('cats')).prompts, ['a cat', 'a dog']);
  assert.deepEqual(shown(), ['a cat', 'a dog']);
  assert.equal(effects.treeRefreshes, 0);
  panel.dispose();
});

/** The directives of the page's Content-Security-Policy meta tag, each as its list of sources. */
function cspOf(html: string): Map<string, string[]> {
  const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html);
  assert.ok(meta, `the page has a CSP meta tag:\n${html}`);
  return new Map(meta[1].split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...sources]) => [name, sources]));
}

/** Whether a webview opened with `roots` as its localResourceRoots may load the file `p`. */
const readable = (roots: string[], p: string) => roots.some((r) => p === r || p.startsWith(r + path.sep));
const rootsOf = (panel: FakeWebviewPanel) => ((panel.options as { localResourceRoots?: Uri[] }).localResourceRoots ?? []).map((u) => u.fsPath);

// A page that let any script run (an image's name or a prompt turned into markup, a script pulled from elsewhere)
// would let that script post every message the host acts on: rate, stop a run, add prompts.
test('every panel\'s page runs only its own script: default-src \'none\', a script-src of one fresh nonce, nothing inline or remote', async () => {
  const { rating, dashboard, experiment } = await load();
  const { ws, dir } = await experimentFolder();
  workspace.workspaceFolders = [{ uri: Uri.file(ws) }];
  const { services } = fakeServices();
  const panels: FakeWebviewPanel[] = [];
  rating.openRatingPanel(services, { mode: 'rate', experiment: 'cats', experimentDir: dir, target: 10 });
  panels.push(created.at(-1)!);
  dashboard.openDashboardPanel(services, dir, () => undefined);
  panels.push(created.at(-1)!);
  await experiment.openExperimentPanel(services, 'cats');
  panels.push(created.at(-1)!);
  // the same panel closed and opened again gets a page of its own
  panels[0].dispose();
  rating.openRatingPanel(services, { mode: 'rate', experiment: 'cats', experimentDir: dir, target: 10 });
  panels.push(created.at(-1)!);

  const nonces = panels.map((panel) => {
    const html = panel.webview.html;
    const csp = cspOf(html);
    assert.deepEqual(csp.get('default-src'), ["'none'"], 'nothing loads that a directive does not name');
    const scriptSrc = csp.get('script-src') ?? [];
    assert.equal(scriptSrc.length, 1, `one script source, no 'unsafe-inline', 'unsafe-eval' or host: ${scriptSrc.join(' ')}`);
    const nonce = /^'nonce-([A-Za-z0-9+/=]+)'$/.exec(scriptSrc[0])?.[1];
    assert.ok(nonce, `script-src is a nonce: ${scriptSrc[0]}`);
    assert.ok(Buffer.from(nonce, 'base64').length >= 16, `the nonce has at least 128 random bits: ${nonce}`);
    const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1]);
    assert.ok(scripts.length >= 1 && scripts.every((attrs) => attrs.includes(`nonce="${nonce}"`) && / src="webview:\/\//.test(attrs)), `each script is the bundle, with the nonce: ${scripts.join(' | ')}`);
    return nonce;
  });
  assert.equal(new Set(nonces).size, nonces.length, `a fresh nonce for every page: ${nonces.join(' ')}`);
  for (const p of panels.slice(1)) p.dispose();
});

// The webview reads files only under its localResourceRoots: a root too wide would let a page (or a crafted image
// path) load the extension's code, the experiment's ratings, or a blind comparison's manifest, which says which
// image came from the fine-tuned model.
test('each panel\'s webview may load only dist/, media/ and its own images: not the extension\'s sources, the ratings, or a comparison\'s manifest', async () => {
  const { rating, dashboard, experiment } = await load();
  const { ws, dir } = await experimentFolder();
  workspace.workspaceFolders = [{ uri: Uri.file(ws) }];
  const { services } = fakeServices();
  const ext = services.context.extensionUri.fsPath;
  const compare = path.join(dir, 'compare', 'c1');
  const secrets = [path.join(ext, 'package.json'), path.join(ext, 'src', 'extension', 'extension.ts'), path.join(dir, 'experiment.json'), path.join(dir, 'ratings.jsonl'), path.join(compare, 'manifest.json'), path.join(compare, 'ratings.jsonl')];
  const cases: [string, () => Promise<void> | void, string[]][] = [
    ['rating', () => void rating.openRatingPanel(services, { mode: 'rate', experiment: 'cats', experimentDir: dir, target: 10 }), [path.join(dir, 'samples', 'pair-0-x', 'a.png')]],
    ['comparison', () => void rating.openRatingPanel(services, { mode: 'compare', experiment: 'cats', experimentDir: dir, compareId: 'c1', target: 10 }), [path.join(compare, 'images', 'p0-a.png')]],
    ['dashboard', () => dashboard.openDashboardPanel(services, dir, () => undefined), [path.join(dir, 'ddpo', 'eval', 'epoch-000000', 'p0-s0.png')]],
    ['experiment', () => experiment.openExperimentPanel(services, 'cats'), []],
  ];
  for (const [name, open, images] of cases) {
    await open();
    const panel = created.at(-1)!;
    const roots = rootsOf(panel);
    for (const f of [path.join(ext, 'dist', 'webview', 'rating.js'), path.join(ext, 'media', 'webview.css'), ...images]) assert.ok(readable(roots, f), `${name} loads ${f}; roots ${roots.join(', ')}`);
    for (const f of secrets) assert.ok(!readable(roots, f), `${name} may not load ${f}; roots ${roots.join(', ')}`);
    panel.dispose();
  }
});
