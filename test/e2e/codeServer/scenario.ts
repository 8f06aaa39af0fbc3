/** What a person does with DDPO Studio in a fresh VS Code, step by step, with a screenshot per step. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { hubBackboneSteps } from './hubBackboneScenario';
import { dpoSteps } from './dpoScenario';
import { modelSourceSteps, type ModelSourceEnv } from './modelSourceScenario';
import { studioSteps } from './studioScenario';
import { answerStep, pickQuick, runCommand, toast, treeRow } from './workbench';

/** One step of the scenario: a name and what it does. */
export interface Step {
  name: string;
  run(): Promise<void>;
}

/** The steps, in order; each later step relies on the earlier ones. */
export function scenario(page: Page, workspace: string, url: string, env: ModelSourceEnv): Step[] {
  const ddpo = path.join(workspace, '.ddpo');
  return [
    {
      name: 'the workbench loads with the DDPO Studio activity bar entry',
      async run() {
        await page.goto(`${url}/?folder=${encodeURIComponent(workspace)}`);
        await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
        await page.locator('.activitybar [aria-label^="DDPO Studio"]').first().waitFor({ timeout: 60_000 });
      },
    },
    {
      name: 'opening the DDPO Studio container shows the empty Experiments view',
      async run() {
        await page.locator('.activitybar [aria-label^="DDPO Studio"]').first().click();
        await page.locator('#workbench\\.parts\\.sidebar').getByText('No experiments yet', { exact: false }).waitFor();
      },
    },
    {
      name: '"DDPO Studio: New Experiment" (quick picks: embedded model, typed prompts, CPU preset) adds the experiment to the tree and to disk',
      async run() {
        await runCommand(page, 'DDPO Studio: New Experiment');
        await answerStep(page, '(1/6): name', 'watercolor-cats');
        await pickQuick(page, 'Embedded tiny model');
        await pickQuick(page, 'Built-in shape features');
        await pickQuick(page, 'Start cold');
        await pickQuick(page, 'Type prompts');
        await answerStep(page, 'Prompts, separated by', 'a big red circle on a blue background; a small yellow square on the left on a black background');
        await pickQuick(page, 'Quick test on CPU');
        await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
        await treeRow(page, 'watercolor-cats').waitFor();
        const json = JSON.parse(fs.readFileSync(path.join(ddpo, 'watercolor-cats', 'experiment.json'), 'utf8'));
        assert.equal(json.name, 'watercolor-cats');
        assert.equal(json.baseModel.id, 'embedded:tiny-shapes');
        assert.equal(json.prompts.length, 2);
        assert.equal(json.rewardPrior, undefined, 'started cold');
        assert.equal(JSON.parse(fs.readFileSync(path.join(ddpo, 'watercolor-cats', 'ddpo.json'), 'utf8')).reward, 'learned');
      },
    },
    {
      name: 'folders added on disk by hand appear in the tree, a malformed one as an error with its reason',
      async run() {
        fs.mkdirSync(path.join(ddpo, 'made-by-hand'));
        fs.writeFileSync(path.join(ddpo, 'made-by-hand', 'experiment.json'), JSON.stringify({ schemaVersion: 1, name: 'made-by-hand', createdAt: new Date().toISOString(), baseModel: { id: 'sd-turbo' }, prompts: ['a red fox', 'a lighthouse at dusk'] }));
        fs.mkdirSync(path.join(ddpo, 'broken'));
        fs.writeFileSync(path.join(ddpo, 'broken', 'experiment.json'), '{ "schemaVersion": 1, ');
        await treeRow(page, 'made-by-hand').waitFor();
        await treeRow(page, 'not valid JSON').waitFor();
        // The twistie expands without opening the experiment (a click on the label opens its panel).
        await treeRow(page, 'made-by-hand').locator('.monaco-tl-twistie').click();
        await treeRow(page, 'Prompts').waitFor();
      },
    },
    {
      name: 'a folder removed on disk disappears from the tree',
      async run() {
        fs.rmSync(path.join(ddpo, 'broken'), { recursive: true });
        await treeRow(page, 'not valid JSON').waitFor({ state: 'detached' });
      },
    },
    {
      name: '"DDPO Studio: Worker Status" shows the worker\'s onnxruntime version and execution providers',
      async run() {
        await runCommand(page, 'DDPO Studio: Worker Status');
        const t = toast(page, /onnxruntime \d+\.\d+\.\d+/);
        await t.waitFor({ timeout: 60_000 });
        const text = await t.innerText();
        assert.match(text, /execution providers: [^;]*cpu/);
        assert.match(text, /node 24\./);
        // Hovering keeps the toast open; the short wait lets its fade-in finish so the screenshot is legible.
        await t.hover();
        await page.waitForTimeout(500);
      },
    },
    {
      name: 'clicking an experiment opens its panel (a webview) with its prompts',
      async run() {
        await page.locator('.notifications-toasts .notification-toast .codicon-notifications-clear').first().click({ timeout: 3000 }).catch(() => undefined);
        await treeRow(page, 'made-by-hand').click();
        const frame = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
        await frame.locator('h1', { hasText: 'made-by-hand' }).waitFor({ timeout: 30_000 });
        await frame.getByText('a lighthouse at dusk').waitFor();
      },
    },
    {
      name: 'a prompt added in the panel is saved to experiment.json and shows in the tree',
      async run() {
        const frame = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
        await frame.getByLabel('New prompt').fill('a watercolor cat on a windowsill');
        await frame.getByRole('button', { name: 'Add prompt' }).click();
        await frame.getByText('a watercolor cat on a windowsill').waitFor();
        const json = JSON.parse(fs.readFileSync(path.join(ddpo, 'made-by-hand', 'experiment.json'), 'utf8'));
        assert.deepEqual(json.prompts, ['a red fox', 'a lighthouse at dusk', 'a watercolor cat on a windowsill']);
        await treeRow(page, 'Prompts').locator('.monaco-tl-twistie').click();
        await treeRow(page, 'a watercolor cat on a windowsill').waitFor();
      },
    },
    ...studioSteps(page, workspace),
    ...dpoSteps(page, workspace),
    ...modelSourceSteps(page, workspace, env),
    ...hubBackboneSteps(page, workspace, env),
  ];
}
