/** The studio steps: rate by keyboard, undo, train the reward model, fine-tune, survive a worker kill, compare blind, reload. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import type { Step } from './scenario';
import { activeWebview, closeToasts, contextMenu, pickQuick, toast, treeRow } from './workbench';

const EXP = 'watercolor-cats';

/** The records of a JSON-lines file. */
export function lines(file: string): { kind: string; id: string; choice?: string; left?: string }[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** What each rating key answers (the rating panel's keyboard map). */
export const KEY_CHOICE: Record<string, string> = { '1': 'left', ArrowLeft: 'left', '2': 'right', ArrowRight: 'right' };

/** The decoded src of the left image now on screen: its webview URI holds the image's file path. */
export async function shownLeft(frame: ReturnType<typeof activeWebview>): Promise<string> {
  const img = frame.getByRole('img', { name: /Left image for/ });
  await img.waitFor({ timeout: 60_000 });
  return decodeURIComponent((await img.getAttribute('src')) ?? '');
}

function status(dir: string): { state: string; pid: number } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'ddpo', 'status.json'), 'utf8'));
}

/** Steps that run after the foundation steps, on the experiment they created with the embedded model. */
export function studioSteps(page: Page, workspace: string): Step[] {
  const dir = path.join(workspace, '.ddpo', EXP);
  const ratings = path.join(dir, 'ratings.jsonl');
  return [
    {
      name: 'clicking the experiment shows where the person is in the loop, its next step and the reward backbone',
      async run() {
        await closeToasts(page);
        await treeRow(page, EXP).click();
        const panel = activeWebview(page);
        await panel.locator('h1', { hasText: EXP }).waitFor({ timeout: 30_000 });
        await panel.getByTestId('loop-rated').getByText('0 pairs').waitFor();
        await panel.getByTestId('next-step-why').getByText(/^Rate 20 more pairs \(0 of 20\)/).waitFor();
        await panel.getByTestId('reward-backbone').getByText('Reward model: trains on built-in shape features').waitFor();
      },
    },
    {
      name: 'the walkthrough\'s Rate button opens the rating panel, which rates 10 pairs by keyboard alone, and 10 ratings are in ratings.jsonl',
      async run() {
        await activeWebview(page).getByTestId('next-step').click();
        const frame = activeWebview(page);
        await frame.getByText('0 / 50 rated').waitFor({ timeout: 60_000 });
        // Every control has an accessible name.
        for (const name of ['Left is better', 'Right is better', 'Tie: both equally good', 'Skip this pair', 'Undo the last rating']) await frame.getByRole('button', { name }).waitFor();
        await frame.getByRole('img', { name: /Left image for/ }).waitFor({ timeout: 60_000 });
        await frame.locator('.prompt').click();
        const keys = ['1', '2', 'ArrowLeft', 'ArrowRight', '1', '2', 'ArrowLeft', 'ArrowRight', '2', '1'];
        const lefts: string[] = [];
        for (const [i, key] of keys.entries()) {
          lefts.push(await shownLeft(frame));
          await page.keyboard.press(key);
          await frame.getByText(`${i + 1} / 50 rated`).waitFor({ timeout: 30_000 });
        }
        await frame.getByText(/Saved ✓ \(10 rated\)/).waitFor();
        const recs = lines(ratings);
        assert.equal(recs.filter((r) => r.kind === 'rating').length, 10);
        assert.deepEqual([...new Set(recs.map((r) => r.choice))].sort(), ['left', 'right']);
        // each key's answer, in the order pressed, about the pair on screen, with its left image stored as `left`
        assert.deepEqual(recs.map((r) => r.choice), keys.map((k) => KEY_CHOICE[k]));
        recs.forEach((r, i) => assert.ok(lefts[i].includes(`/${r.left}`), `rating ${i + 1}: stored left ${r.left}, shown left ${lefts[i]}`));
        await frame.getByRole('img', { name: /Left image for/ }).waitFor({ timeout: 60_000 });
      },
    },
    {
      name: 'U and Ctrl+Z each undo the last rating (a retraction is appended and 9 ratings count), and a held key rates once',
      async run() {
        const frame = activeWebview(page);
        await page.keyboard.press('u');
        await frame.getByText('9 / 50 rated').waitFor();
        let recs = lines(ratings);
        assert.equal(recs.length, 11);
        assert.equal(recs[10].kind, 'retract');
        assert.equal(recs[10].id, recs[9].id);
        // rate the undone pair again, then take that back with the platform's undo key
        // rate the undone pair again with a held key: its auto-repeats must not rate the pairs that come up after it
        await frame.getByRole('img', { name: /Left image for/ }).waitFor({ timeout: 60_000 });
        for (let i = 0; i < 4; i++) await page.keyboard.down('2');
        await page.keyboard.up('2');
        await frame.getByText('10 / 50 rated').waitFor({ timeout: 30_000 });
        await frame.getByText(/Saved ✓ \(10 rated\)/).waitFor({ timeout: 30_000 });
        await frame.getByRole('img', { name: /Left image for/ }).waitFor({ timeout: 60_000 });
        assert.equal(lines(ratings).length, 12, 'one rating for the held key');
        // then take it back with the platform's undo key
        await page.keyboard.press('Control+z');
        await frame.getByText('9 / 50 rated').waitFor();
        recs = lines(ratings);
        assert.equal(recs.length, 13);
        assert.deepEqual([recs[11].kind, recs[12].kind], ['rating', 'retract']);
        assert.equal(recs[12].id, recs[11].id);
      },
    },
    {
      name: 'Train Reward Model from the tree\'s context menu reports its held-out accuracy',
      async run() {
        await closeToasts(page);
        // Only this experiment stays expanded, so its rows are the only "Reward model", "Ratings" ... rows.
        const other = treeRow(page, 'made-by-hand');
        if ((await other.getAttribute('aria-expanded')) === 'true') await other.locator('.monaco-tl-twistie').click();
        await treeRow(page, EXP).locator('.monaco-tl-twistie').click();
        await treeRow(page, 'Ratings').getByText('9 rated').waitFor();
        await contextMenu(page, treeRow(page, EXP), 'Train Reward Model');
        const t = toast(page, /Reward model of watercolor-cats trained/);
        await t.waitFor({ timeout: 60_000 });
        assert.ok(fs.existsSync(path.join(dir, 'reward', 'card.json')));
        await treeRow(page, 'Reward model').getByText(/accuracy \d+%/).waitFor();
        await t.hover();
      },
    },
    {
      name: 'Start Fine-Tuning opens the dashboard, which charts a finished epoch, with a status-bar item and a progress notification',
      async run() {
        await closeToasts(page);
        // A longer run than the preset's two epochs, so there is time to kill the worker in the next step.
        const cfgFile = path.join(dir, 'ddpo.json');
        fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), num_epochs: 8 }, null, 2));
        await contextMenu(page, treeRow(page, 'Fine-tuning'), 'Start Fine-Tuning');
        const frame = activeWebview(page);
        await frame.getByText(/[1-7] of 8 epochs finished/).waitFor({ timeout: 90_000 });
        await frame.getByRole('img', { name: /Reward mean ± std: [1-7] epochs/ }).waitFor();
        await frame.getByRole('img', { name: /Evaluation image for/ }).first().waitFor();
        await page.locator('#workbench\\.parts\\.statusbar', { hasText: 'DDPO watercolor-cats' }).waitFor();
        await toast(page, /fine-tuning watercolor-cats/).waitFor();
        assert.equal(status(dir).state, 'running');
      },
    },
    {
      name: 'killing the worker mid-run tells the person why, marks the run interrupted and offers Resume',
      async run() {
        const { pid } = status(dir);
        process.kill(pid, 'SIGKILL');
        const t = toast(page, /Fine-tuning of watercolor-cats was interrupted/);
        await t.waitFor({ timeout: 30_000 });
        await t.getByText(/SIGKILL/).waitFor();
        await activeWebview(page).getByText(/Interrupted/).waitFor();
        await t.hover();
      },
    },
    {
      name: 'Resume continues from the newest checkpoint and the run finishes all 8 epochs',
      async run() {
        await toast(page, /was interrupted/).getByRole('button', { name: 'Resume' }).click();
        const frame = activeWebview(page);
        await frame.getByText('Done · 8 of 8 epochs finished').waitFor({ timeout: 120_000 });
        assert.equal(status(dir).state, 'done');
        const epochs = lines(path.join(dir, 'ddpo', 'metrics.jsonl')).map((m) => (m as unknown as { epoch: number }).epoch);
        assert.deepEqual(epochs, [0, 1, 2, 3, 4, 5, 6, 7]);
        await frame.getByRole('img', { name: /Reward mean ± std: 8 epochs/ }).waitFor();
        await treeRow(page, 'Fine-tuning').getByText('done · 8/8 epochs').waitFor();
      },
    },
    {
      name: 'a blind comparison of base vs the last checkpoint is rated by keyboard and shows its win rate',
      async run() {
        await closeToasts(page);
        await contextMenu(page, treeRow(page, EXP), 'Compare with Base Model (Blind)');
        const frame = activeWebview(page);
        await frame.getByText('0 / 4 rated').waitFor({ timeout: 90_000 });
        await frame.getByText('Skipped pairs are not counted in the win rate').waitFor();
        await frame.locator('.prompt').click();
        const keys = ['1', '2', '1', 'ArrowLeft'];
        const lefts: string[] = [];
        for (const [i, key] of keys.entries()) {
          lefts.push(await shownLeft(frame));
          await page.keyboard.press(key);
          await frame.getByText(`${i + 1} / 4 rated`).waitFor();
          // blind until the last answer: no running win rate in the panel or the tree
          if (i < keys.length - 1) {
            assert.equal(await frame.locator('.winrate').count(), 0, `a win rate showed after ${i + 1} of 4 answers`);
            await treeRow(page, 'being rated').getByText('Blind comparisons').waitFor();
          }
        }
        const result = await frame.getByText(/The fine-tuned model won \d+% of the time \(95% CI/).innerText();
        const pct = /won (\d+)%/.exec(result)![1];
        const cmp = fs.readdirSync(path.join(dir, 'compare'));
        assert.equal(cmp.length, 1);
        const recs = lines(path.join(dir, 'compare', cmp[0], 'ratings.jsonl'));
        assert.equal(recs.length, 4);
        assert.deepEqual(recs.map((r) => r.choice), keys.map((k) => KEY_CHOICE[k]));
        recs.forEach((r, i) => assert.ok(lefts[i].includes(`/${r.left}`), `comparison rating ${i + 1}: stored left ${r.left}, shown left ${lefts[i]}`));
        // the win rate from the keys pressed and the manifest's key to which image was the fine-tuned one (side B)
        const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'compare', cmp[0], 'manifest.json'), 'utf8')) as { a: { kind: string }; b: { kind: string }; items: { a: string; b: string }[] };
        assert.deepEqual([manifest.a.kind, manifest.b.kind], ['base', 'checkpoint']);
        const tunedShownLeft = lefts.map((src) => {
          const item = manifest.items.find((it) => src.includes(`/${it.b}`) || src.includes(`/${it.a}`));
          assert.ok(item, `the left image ${src} is one of the comparison's`);
          return src.includes(`/${item.b}`);
        });
        const wins = keys.filter((k, i) => (KEY_CHOICE[k] === 'left') === tunedShownLeft[i]).length;
        assert.equal(pct, String(Math.round((100 * wins) / keys.length)), `the panel's win rate against ${wins} wins of ${keys.length} by the keys pressed`);
        await treeRow(page, 'Blind comparisons').getByText(`latest: ${pct}% (95% CI`).waitFor();
      },
    },
    {
      name: 'the training dashboard shows the win rate with its confidence interval',
      async run() {
        await treeRow(page, 'Fine-tuning').click();
        await activeWebview(page).getByText(/win rate \d+% \(95% CI \d+–\d+%, n=4\)/).waitFor();
        // the walkthrough above the charts shows the same win rate and a next step
        await activeWebview(page).getByTestId('loop-win').getByText(/^\d+%$/).waitFor();
        await activeWebview(page).getByTestId('next-step-why').waitFor();
      },
    },
    {
      name: 'Export LoRA from the tree writes the kohya file into the experiment\'s exports folder',
      async run() {
        await closeToasts(page);
        await contextMenu(page, treeRow(page, EXP), 'Export LoRA');
        await pickQuick(page, 'kohya');
        const t = toast(page, /Exported the DDPO epoch 8 LoRA/);
        await t.waitFor({ timeout: 30_000 });
        assert.ok(fs.statSync(path.join(dir, 'exports', `${EXP}-epoch-8-kohya.safetensors`)).size > 0);
        // Hovering keeps the toast open; the short wait lets its fade-in finish so the screenshot is legible.
        await t.hover();
        await page.waitForTimeout(500);
      },
    },
    {
      name: 'Delete Experiment asks for confirmation first',
      async run() {
        await closeToasts(page);
        await contextMenu(page, treeRow(page, 'made-by-hand'), 'Delete Experiment');
        await page.locator('.monaco-dialog-box').getByText(/Delete the experiment "made-by-hand"\?/).waitFor();
        assert.ok(fs.existsSync(path.join(workspace, '.ddpo', 'made-by-hand')));
      },
    },
    {
      name: 'confirming the deletion removes the experiment folder and its row',
      async run() {
        await page.locator('.monaco-dialog-box').getByRole('button', { name: 'Delete' }).click();
        await treeRow(page, 'made-by-hand').waitFor({ state: 'detached' });
        assert.equal(fs.existsSync(path.join(workspace, '.ddpo', 'made-by-hand')), false);
      },
    },
    {
      name: 'the rating panel follows the colour theme (Dark Modern) and Z zooms the images',
      async run() {
        await page.keyboard.press('F1');
        await page.locator('.quick-input-widget input[type="text"]').fill('>Preferences: Color Theme');
        await page.locator('.quick-input-list .monaco-list-row[aria-label^="Preferences: Color Theme"]').first().click();
        await pickQuick(page, 'Dark Modern');
        await page.locator('.monaco-workbench.vs-dark').waitFor();
        // the pointer left over the command centre raises its hover, which covers the tab strip
        await page.mouse.move(700, 600);
        await page.locator('.monaco-hover, .workbench-hover').first().waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => undefined);
        await page.locator('.tabs-container .tab', { hasText: 'Rate: watercolor-cats' }).click();
        const frame = activeWebview(page);
        await frame.getByRole('img', { name: /Left image for/ }).waitFor();
        await frame.locator('.prompt').click();
        await page.keyboard.press('z');
        await frame.locator('img.pair-img.zoomed').first().waitFor();
        // The panel's text takes the theme's foreground: light on a dark theme.
        // (A Function built from text, as this file is type-checked without the DOM library.)
        const color = String(await frame.locator('h1').evaluate(new Function('e', 'return getComputedStyle(e).color') as (e: unknown) => string));
        const [r, g, b] = (color.match(/\d+/g) ?? ['0', '0', '0']).map(Number);
        assert.ok(r + g + b > 3 * 150, `the heading should be light text in a dark theme, got ${color}`);
      },
    },
    {
      name: 'reloading the window restores every experiment\'s state from disk',
      async run() {
        await page.reload();
        await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
        const container = page.locator('.activitybar [aria-label^="DDPO Studio"]').first();
        await container.waitFor({ timeout: 60_000 });
        // The side bar comes back as it was (DDPO Studio open) once the extension has loaded; open it only if not.
        const shown = await treeRow(page, EXP).waitFor({ timeout: 20_000 }).then(() => true, () => false);
        if (!shown) await container.click();
        await treeRow(page, EXP).waitFor({ timeout: 30_000 });
        if (!(await treeRow(page, 'Ratings').isVisible())) await treeRow(page, EXP).locator('.monaco-tl-twistie').click();
        await treeRow(page, 'Ratings').getByText('9 rated').waitFor();
        await treeRow(page, 'Reward model').getByText(/accuracy \d+%/).waitFor();
        await treeRow(page, 'Fine-tuning').getByText('done · 8/8 epochs').waitFor();
        await treeRow(page, 'Blind comparisons').getByText(/latest: \d+%/).waitFor();
      },
    },
    {
      name: 'the rating panel and the dashboard open before the reload come back with their content',
      async run() {
        await closeToasts(page);
        const tab = (title: string) => page.locator('.tabs-container .tab', { hasText: title }).first();
        await tab('Rate: watercolor-cats').click({ timeout: 30_000 });
        const rating = activeWebview(page);
        await rating.getByText('9 / 50 rated').waitFor({ timeout: 60_000 });
        await rating.getByRole('img', { name: /Left image for/ }).waitFor({ timeout: 60_000 });
        await tab('Training: watercolor-cats').click();
        await activeWebview(page).getByText(/win rate \d+% \(95% CI \d+–\d+%, n=4\)/).waitFor({ timeout: 60_000 });
      },
    },
  ];
}
