/** The loop on a Hub model whose reward backbone (a CLIP) also comes from the Hub: create, rate, train the reward model warm-started, fine-tune an epoch. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { isHeldOut, WARM_START_COUNTS } from '../../../src/core/reward/experiment';
import { readRatings } from '../../../src/core/reward/store';
import type { ModelSourceEnv } from './modelSourceScenario';
import type { Step } from './scenario';
import { activeWebview, answerStep, closeToasts, contextMenu, pickQuick, runCommand, toast, treeRow, until } from './workbench';

const EXP = 'hub-clip';
/** The base model repo the model-source steps downloaded; the second download finds every file in the cache. */
const MODEL_REPO = 'ddpo-test/tiny-shapes';
/** The mock Hub serves media/tiny-clip under this repo id (run.ts). */
export const CLIP_REPO = 'ddpo-test/tiny-clip';
/** The folder served as {@link CLIP_REPO}. */
export const CLIP_FOLDER = path.resolve(__dirname, '../../../media/tiny-clip');
const CLIP_LABEL = `${CLIP_REPO} (image + text)`;

/** Steps that run after the model-source steps: a new experiment on the Hub model with the Hub's CLIP as its reward backbone. */
export function hubBackboneSteps(page: Page, workspace: string, env: ModelSourceEnv): Step[] {
  const dir = path.join(workspace, '.ddpo', EXP);
  const cached = path.join(env.home, '.cache', 'ddpo-studio', 'models', CLIP_REPO.replace('/', '--'), 'main');
  const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  const writeJson = (file: string, value: unknown) => fs.writeFileSync(path.join(dir, file), JSON.stringify(value, null, 2));
  return [
    {
      name: 'New Experiment on the Hub model with "Another Hugging Face repo…" as reward backbone downloads the CLIP from HF_ENDPOINT with a progress notification',
      async run() {
        await closeToasts(page);
        // A webview editor can take the focus back and so close a quick pick of the flow halfway: none stays open.
        await runCommand(page, 'View: Close All Editors');
        await runCommand(page, 'DDPO Studio: New Experiment');
        await answerStep(page, '(1/6): name', EXP);
        await pickQuick(page, 'Download from the Hugging Face Hub');
        await answerStep(page, 'Hugging Face repo with an ONNX Stable Diffusion export', MODEL_REPO);
        await pickQuick(page, 'Another Hugging Face repo');
        await answerStep(page, 'Hugging Face repo with a CLIP ONNX export', CLIP_REPO);
        // The mock Hub holds the second half of onnx/vision_model.onnx for a few seconds, so the download is caught mid-way.
        await toast(page, `Downloading ${CLIP_REPO} from ${env.hub.url}`).getByText(/downloading onnx\/vision_model\.onnx/).waitFor({ timeout: 30_000 });
        assert.ok(env.hub.requests.some((r) => r.path === `/api/models/${CLIP_REPO}/revision/main`), 'the worker listed the backbone repo on the mock Hub');
      },
    },
    {
      name: 'once the CLIP is downloaded, the wizard asks where the reward model starts: clip_score (it has a text tower; not aesthetic, it is not ViT-L/14) or cold',
      async run() {
        const rows = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
        await rows.filter({ hasText: 'Start from clip_score' }).waitFor({ timeout: 60_000 });
        await page.locator('.quick-input-widget').getByText('(4/6): where the reward model starts').waitFor();
        assert.deepEqual((await rows.allInnerTexts()).map((t) => t.split('\n')[0].trim()), ['Start from clip_score', 'Start cold']);
      },
    },
    {
      name: 'the CLIP lands in ~/.cache/ddpo-studio/models and experiment.json records it with the chosen start (clip_score); the tree names the backbone',
      async run() {
        await pickQuick(page, 'Start from clip_score');
        await pickQuick(page, 'Type prompts');
        await answerStep(page, 'Prompts, separated by', 'a big red circle on a blue background; a small yellow square on the left on a black background');
        await pickQuick(page, 'Quick test on CPU');
        await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
        await treeRow(page, EXP).waitFor({ timeout: 60_000 });
        assert.deepEqual(readJson('experiment.json').rewardBackbone, { id: CLIP_REPO, path: cached });
        assert.equal(readJson('experiment.json').rewardPrior, 'clip_score');
        for (const f of ['onnx/vision_model.onnx', 'onnx/text_model.onnx', 'tokenizer.json', 'preprocessor_config.json', 'config.json']) {
          assert.ok(fs.readFileSync(path.join(cached, f)).equals(fs.readFileSync(path.join(CLIP_FOLDER, f))), `${f} in the cache equals the served file`);
        }
        assert.ok(fs.existsSync(path.join(cached, '.ddpo-complete.json')));
        await toast(page, `Downloading ${CLIP_REPO}`).waitFor({ state: 'hidden' });
        // Only this experiment stays expanded, so its rows are the only "Reward model", "Fine-tuning" ... rows.
        for (const other of ['watercolor-cats', 'local-tiny', 'hub-tiny']) {
          const row = treeRow(page, other);
          if ((await row.getAttribute('aria-expanded')) === 'true') await row.locator('.monaco-tl-twistie').click();
        }
        await treeRow(page, EXP).locator('.monaco-tl-twistie').click();
        await treeRow(page, 'Reward model').getByText(`not trained · ${CLIP_REPO}`).waitFor();
      },
    },
    {
      name: 'the rating panel rates pairs of the Hub model by keyboard until some are held out for the reward model\'s test',
      async run() {
        await closeToasts(page);
        await runCommand(page, 'DDPO Studio: Rate Pairs');
        await pickQuick(page, EXP);
        const frame = activeWebview(page);
        await frame.getByText('0 / 50 rated').waitFor({ timeout: 60_000 });
        await frame.getByRole('img', { name: /Left image for/ }).waitFor({ timeout: 60_000 });
        await frame.locator('.prompt').click();
        // Rate until the held-out split (by pair id) leaves at least 9 comparisons to train on (the card's warm-vs-cold
        // table then has its 8-comparison row) and at least one to test on.
        const split = () => {
          const rs = readRatings(dir).ratings;
          return { held: rs.filter((r) => isHeldOut(r.pairId, 0.2)).length, train: rs.filter((r) => !isHeldOut(r.pairId, 0.2)).length };
        };
        for (let n = 1; split().held < 1 || split().train < 9; n++) {
          assert.ok(n <= 40, `40 ratings still leave ${JSON.stringify(split())} held-out/training pairs`);
          await frame.getByRole('img', { name: /Left image for/ }).waitFor({ timeout: 60_000 });
          await page.keyboard.press(n % 3 === 0 ? '2' : '1');
          await frame.getByText(`${n} / 50 rated`).waitFor({ timeout: 30_000 });
          await until(`ratings.jsonl holds ${n} ratings`, () => readRatings(dir).ratings.length === n, 10_000);
        }
      },
    },
    {
      name: 'Train Reward Model names the Hub CLIP backbone and reports held-out accuracy warm (from clip_score) against cold',
      async run() {
        await closeToasts(page);
        const n = readRatings(dir).ratings.length;
        await treeRow(page, 'Ratings').getByText(`${n} rated`).waitFor();
        await contextMenu(page, treeRow(page, EXP), 'Train Reward Model');
        const t = toast(page, /Reward model of hub-clip trained/);
        await t.waitFor({ timeout: 90_000 });
        const text = await t.innerText();
        assert.ok(text.includes(`with ${CLIP_LABEL}`), `the message names the backbone: ${text}`);
        assert.match(text, /Started from clip_score \(\d+% before any rating\)\. Held-out accuracy, cold → warm: 8 comparisons \d+% → \d+%, \d+ comparisons \d+% → \d+%/);
        const card = readJson('reward/card.json');
        assert.equal(card.backboneLabel, CLIP_LABEL);
        assert.deepEqual(card.backboneSource, { id: CLIP_REPO, path: cached });
        assert.equal(card.head.prior.name, 'clip_score');
        assert.equal(card.warmStart.prior, 'clip_score');
        const train = card.data.trainComparisons;
        assert.deepEqual(card.warmStart.points.map((p: { comparisons: number }) => p.comparisons), [...WARM_START_COUNTS.filter((c) => c < train), train]);
        await treeRow(page, 'Reward model').getByText(new RegExp(`accuracy \\d+% on \\d+ held-out · ${CLIP_LABEL.replace(/[()+]/g, '\\$&')}`)).waitFor();
        // Expanded (focus it, then the workbench's Right-arrow binding), the toast shows the whole table in the screenshot.
        await t.click({ position: { x: 40, y: 12 } });
        await page.keyboard.press('ArrowRight');
        await t.locator('.notification-list-item.expanded').waitFor({ timeout: 5000 }).catch(() => undefined);
        await t.hover({ position: { x: 4, y: 4 } });
      },
    },
    {
      name: 'Start Fine-Tuning runs one epoch against the CLIP reward model and the dashboard shows it finished',
      async run() {
        await closeToasts(page);
        writeJson('ddpo.json', { ...readJson('ddpo.json'), num_epochs: 1 });
        await contextMenu(page, treeRow(page, 'Fine-tuning'), 'Start Fine-Tuning');
        const frame = activeWebview(page);
        await frame.getByText('Done · 1 of 1 epochs finished').waitFor({ timeout: 120_000 });
        await frame.getByRole('img', { name: /Reward mean ± std: 1 epochs/ }).waitFor();
        await treeRow(page, 'Fine-tuning').getByText('done · 1/1 epochs').waitFor();
        assert.equal(readJson('ddpo/status.json').state, 'done');
      },
    },
  ];
}
