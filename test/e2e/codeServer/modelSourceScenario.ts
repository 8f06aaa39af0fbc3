/** New Experiment's other two model sources: a local folder picked in the open dialog, and a Hub download (from a mock Hub). */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { loadModelFolder } from '../../../src/core/models/modelFolder';
import type { MockHub } from '../../unit/models/mockHub';
import type { Step } from './scenario';
import { acceptDialog, answerStep, closeToasts, pickQuick, runCommand, toast, treeRow, typeFolderInDialog } from './workbench';

/** What the harness set up for these steps: code-server's HOME, a scratch folder outside the workspace, and the mock Hub (HF_ENDPOINT). */
export interface ModelSourceEnv {
  home: string;
  scratch: string;
  hub: MockHub;
}

const REPO = 'ddpo-test/tiny-shapes';
const DIALOG = 'Stable Diffusion ONNX folder';
// The folder the mock Hub serves and the local-folder steps copy: the embedded tiny model (or the harness's stand-in).
const served = () => process.env.DDPO_STUDIO_EMBEDDED_MODEL ?? path.resolve(__dirname, '../../../media/tiny-model');

function experimentJson(workspace: string, name: string): { baseModel: { id: string; path?: string }; prompts: string[]; rewardBackbone?: { id: string; path?: string } } {
  return JSON.parse(fs.readFileSync(path.join(workspace, '.ddpo', name, 'experiment.json'), 'utf8'));
}

/** Steps that create experiments from a local model folder and from the Hub; they add experiments and change nothing else. */
export function modelSourceSteps(page: Page, workspace: string, env: ModelSourceEnv): Step[] {
  const localModel = path.join(env.scratch, 'models', 'tiny-local');
  const emptyFolder = path.join(env.scratch, 'models', 'empty');
  const cached = path.join(env.home, '.cache', 'ddpo-studio', 'models', REPO.replace('/', '--'), 'main');
  const newExperimentUpToModel = async (name: string, source: string) => {
    await closeToasts(page);
    // A webview editor can take the focus back and so close a quick pick of the flow halfway: none stays open.
    await runCommand(page, 'View: Close All Editors');
    await runCommand(page, 'DDPO Studio: New Experiment');
    await answerStep(page, '(1/6): name', name);
    await pickQuick(page, source);
  };
  const finishWithPromptsAndPreset = async (prompts: string) => {
    await pickQuick(page, 'Built-in shape features');
    await pickQuick(page, 'Start cold');
    await pickQuick(page, 'Type prompts');
    await answerStep(page, 'Prompts, separated by', prompts);
    await pickQuick(page, 'Quick test on CPU');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
  };
  return [
    {
      name: 'New Experiment from "Local folder…": code-server\'s open dialog lists a model folder outside the workspace whose path was typed',
      async run() {
        fs.cpSync(served(), localModel, { recursive: true });
        await newExperimentUpToModel('local-tiny', 'Local folder');
        await typeFolderInDialog(page, DIALOG, localModel, 'text_encoder');
      },
    },
    {
      name: '"Use this model", prompts and a preset create the experiment with that folder as its base model',
      async run() {
        const modelId = loadModelFolder(localModel).modelId;
        await acceptDialog(page, DIALOG, 'Use this model');
        await finishWithPromptsAndPreset('a big red circle on a blue background');
        await treeRow(page, 'local-tiny').getByText(modelId).waitFor();
        const json = experimentJson(workspace, 'local-tiny');
        assert.deepEqual(json.baseModel, { id: modelId, path: localModel });
        assert.deepEqual(json.rewardBackbone, { id: 'builtin:stats' });
        assert.deepEqual(json.prompts, ['a big red circle on a blue background']);
      },
    },
    {
      name: 'an empty folder picked as the model says what a model folder needs, and creates nothing',
      async run() {
        fs.mkdirSync(emptyFolder, { recursive: true });
        await newExperimentUpToModel('not-a-model', 'Local folder');
        await typeFolderInDialog(page, DIALOG, emptyFolder);
        await acceptDialog(page, DIALOG, 'Use this model');
        const t = toast(page, /is not a Stable Diffusion ONNX model folder/);
        await t.waitFor();
        // Expanded (focus it, then the workbench's Right-arrow binding), the toast shows the whole message in the screenshot.
        await t.click({ position: { x: 40, y: 12 } });
        await page.keyboard.press('ArrowRight');
        await t.locator('.notification-list-item.expanded').waitFor({ timeout: 5000 }).catch(() => undefined);
        const text = await t.innerText();
        assert.ok(text.includes(emptyFolder), `the error names the folder: ${text}`);
        assert.match(text, /lacks model_index\.json.*unet\/model\.onnx/);
        assert.match(text, /nothing was created/);
        assert.equal(fs.existsSync(path.join(workspace, '.ddpo', 'not-a-model')), false);
        assert.equal(await treeRow(page, 'not-a-model').count(), 0);
        // Hovering keeps the toast open; at its corner, no tooltip covers the message.
        await t.hover({ position: { x: 4, y: 4 } });
        await page.waitForTimeout(500);
      },
    },
    {
      name: 'New Experiment from the Hub: typing owner/name starts a download from HF_ENDPOINT with a progress notification',
      async run() {
        await newExperimentUpToModel('hub-tiny', 'Download from the Hugging Face Hub');
        await answerStep(page, 'Hugging Face repo', REPO);
        // The mock Hub holds the second half of unet/model.onnx for a few seconds, so the download is caught mid-way.
        const t = toast(page, `Downloading ${REPO} from ${env.hub.url}`);
        await t.getByText(/downloading unet\/model\.onnx/).waitFor({ timeout: 30_000 });
        assert.ok(env.hub.requests.some((r) => r.path === `/api/models/${REPO}/revision/main`), 'the worker listed the repo on the mock Hub');
      },
    },
    {
      name: 'the Hub download lands in ~/.cache/ddpo-studio/models and the experiment is created with that model',
      async run() {
        await finishWithPromptsAndPreset('a small yellow square on the left on a black background');
        await treeRow(page, 'hub-tiny').getByText(REPO).waitFor();
        const json = experimentJson(workspace, 'hub-tiny');
        assert.deepEqual(json.baseModel, { id: REPO, path: cached });
        for (const f of ['model_index.json', 'unet/model.onnx', 'text_encoder/model.onnx', 'vae_decoder/model.onnx', 'tokenizer/vocab.json']) {
          assert.ok(fs.readFileSync(path.join(cached, f)).equals(fs.readFileSync(path.join(served(), f))), `${f} in the cache equals the served file`);
        }
        assert.ok(fs.existsSync(path.join(cached, '.ddpo-complete.json')));
        assert.equal(fs.readdirSync(cached, { recursive: true }).some((f) => String(f).endsWith('.part')), false);
        await toast(page, `Downloading ${REPO}`).waitFor({ state: 'hidden' });
        await treeRow(page, 'hub-tiny').locator('.monaco-tl-twistie').click();
        await page.locator('#workbench\\.parts\\.sidebar .monaco-list-row[role="treeitem"]').filter({ hasText: 'Base model' }).filter({ hasText: REPO }).waitFor();
      },
    },
  ];
}
