/** Diffusion-DPO from the studio: a short run on the experiment's rated pairs, its charts, and a blind comparison with DDPO. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import type { Step } from './scenario';
import { KEY_CHOICE, lines, shownLeft } from './studioScenario';
import { activeWebview, closeToasts as closeAllToasts, contextMenu, pickQuick, treeRow } from './workbench';

const EXP = 'watercolor-cats';
const DPO_EPOCHS = 2;

// A comparison's manifest: its sides and which blind image is which side's.
interface ComparisonManifest {
  a: { kind: string; algorithm?: string; epoch?: number };
  b: { kind: string; algorithm?: string; epoch?: number };
  items: { a: string; b: string }[];
}

// Rates the open comparison's pairs by pressing `keys`, one a pair; returns the left image shown for each.
async function rateComparisonByKeys(page: Page, keys: string[]): Promise<string[]> {
  const frame = activeWebview(page);
  await frame.getByText(`0 / ${keys.length} rated`).waitFor({ timeout: 90_000 });
  await frame.locator('.prompt').click();
  const lefts: string[] = [];
  for (const [i, key] of keys.entries()) {
    lefts.push(await shownLeft(frame));
    await page.keyboard.press(key);
    await frame.getByText(`${i + 1} / ${keys.length} rated`).waitFor();
  }
  return lefts;
}

// Checks the comparison's stored ratings against the keys pressed and the images shown; returns its manifest and
// side B's wins counted from the keys pressed and the manifest's key to which image was B's.
function checkComparisonRatings(compareDir: string, keys: string[], lefts: string[]): { manifest: ComparisonManifest; winsOfB: number } {
  const recs = lines(path.join(compareDir, 'ratings.jsonl'));
  assert.equal(recs.length, keys.length);
  assert.deepEqual(recs.map((r) => r.choice), keys.map((k) => KEY_CHOICE[k]));
  recs.forEach((r, i) => assert.ok(lefts[i].includes(`/${r.left}`), `comparison rating ${i + 1}: stored left ${r.left}, shown left ${lefts[i]}`));
  const manifest = JSON.parse(fs.readFileSync(path.join(compareDir, 'manifest.json'), 'utf8')) as ComparisonManifest;
  const bShownLeft = lefts.map((src) => {
    const item = manifest.items.find((it) => src.includes(`/${it.b}`) || src.includes(`/${it.a}`));
    assert.ok(item, `the left image ${src} is one of the comparison's`);
    return src.includes(`/${item.b}`);
  });
  return { manifest, winsOfB: keys.filter((k, i) => (KEY_CHOICE[k] === 'left') === bShownLeft[i]).length };
}

/** Steps that run after the studio steps, on their experiment: its ratings and its finished 8-epoch DDPO run. */
export function dpoSteps(page: Page, workspace: string): Step[] {
  const dir = path.join(workspace, '.ddpo', EXP);
  const closeToasts = () => closeAllToasts(page);
  return [
    {
      name: 'Start Fine-Tuning with Diffusion-DPO trains on the rated pairs and the dashboard charts its loss and implicit reward accuracy',
      async run() {
        await closeToasts();
        // A short run: Diffusion-DPO takes its own num_epochs from ddpo.json's "diffusion_dpo" overrides.
        const cfgFile = path.join(dir, 'ddpo.json');
        const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
        fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, diffusion_dpo: { ...cfg.diffusion_dpo, num_epochs: DPO_EPOCHS } }, null, 2));
        await contextMenu(page, treeRow(page, EXP), 'Start Fine-Tuning');
        await pickQuick(page, 'Diffusion-DPO');
        const frame = activeWebview(page);
        await frame.getByRole('heading', { name: `Training: ${EXP} · Diffusion-DPO` }).waitFor({ timeout: 30_000 });
        await frame.getByText(`Done · ${DPO_EPOCHS} of ${DPO_EPOCHS} epochs finished`).waitFor({ timeout: 120_000 });
        const metrics = lines(path.join(dir, 'diffusion-dpo', 'metrics.jsonl')) as unknown as { algorithm: string; epoch: number; held_out?: unknown }[];
        assert.deepEqual(metrics.map((m) => [m.algorithm, m.epoch]), [['diffusion-dpo', 0], ['diffusion-dpo', 1]]);
        // one point per finished epoch; the held-out chart has one where the split held pairs out
        for (const title of ['Diffusion-DPO loss', 'Implicit reward accuracy, training pairs']) {
          const chart = frame.getByRole('img', { name: new RegExp(`^${title}: ${DPO_EPOCHS} epochs, latest `) });
          await chart.waitFor();
          assert.equal(await chart.locator('circle.dot').count(), DPO_EPOCHS, `points of the chart "${title}"`);
        }
        const heldOut = metrics.filter((m) => m.held_out).length;
        await frame.getByRole('img', { name: new RegExp(`^Implicit reward accuracy, held-out pairs: ${heldOut} epochs`) }).waitFor();
        // both runs are a click apart: DDPO's charts, then back to Diffusion-DPO's
        await frame.locator('[data-testid="run-diffusion-dpo"][aria-pressed="true"]').waitFor();
        await frame.getByTestId('run-ddpo').click();
        await frame.getByRole('img', { name: /Reward mean ± std: 8 epochs/ }).waitFor();
        await frame.getByTestId('run-diffusion-dpo').click();
        await frame.getByRole('img', { name: new RegExp(`^Diffusion-DPO loss: ${DPO_EPOCHS} epochs`) }).waitFor();
        await treeRow(page, 'Fine-tuning (Diffusion-DPO)').getByText(`done · ${DPO_EPOCHS}/${DPO_EPOCHS} epochs`).waitFor();
        assert.ok(fs.existsSync(path.join(dir, 'diffusion-dpo', 'checkpoints', `epoch-${String(DPO_EPOCHS - 1).padStart(6, '0')}`)));
      },
    },
    {
      name: 'a blind comparison of DDPO epoch 8 (B) vs Diffusion-DPO epoch 2 (A) is rated by keyboard, stored side by side, and shows B\'s win rate',
      async run() {
        await closeToasts();
        const before = new Set(fs.readdirSync(path.join(dir, 'compare')));
        await contextMenu(page, treeRow(page, EXP), 'Compare Two Models (Blind)');
        await pickQuick(page, 'DDPO epoch 8');
        await pickQuick(page, `Diffusion-DPO epoch ${DPO_EPOCHS}`);
        const keys = ['2', '1', 'ArrowRight', '1'];
        const lefts = await rateComparisonByKeys(page, keys);
        const label = `DDPO epoch 8, against Diffusion-DPO epoch ${DPO_EPOCHS}`;
        const result = await activeWebview(page).getByText(new RegExp(`^${label}, won \\d+% of the time \\(95% CI`)).innerText();
        const pct = /won (\d+)%/.exec(result)![1];
        const added = fs.readdirSync(path.join(dir, 'compare')).filter((c) => !before.has(c));
        assert.equal(added.length, 1);
        const { manifest, winsOfB } = checkComparisonRatings(path.join(dir, 'compare', added[0]), keys, lefts);
        assert.deepEqual(manifest.a, { kind: 'checkpoint', algorithm: 'diffusion-dpo', epoch: DPO_EPOCHS - 1 });
        assert.deepEqual(manifest.b, { kind: 'checkpoint', algorithm: 'ddpo', epoch: 7 });
        assert.equal(pct, String(Math.round((100 * winsOfB) / keys.length)), `the panel's win rate against B's ${winsOfB} wins of ${keys.length} by the keys pressed`);
        // the result in the tree and on the dashboard
        await treeRow(page, 'Blind comparisons').getByText(`latest: ${pct}% (95% CI`).waitFor();
        await treeRow(page, 'Fine-tuning (Diffusion-DPO)').click();
        await activeWebview(page).getByText(new RegExp(`Blind comparison, DDPO epoch 8 vs Diffusion-DPO epoch ${DPO_EPOCHS}: win rate ${pct}% \\(95% CI \\d+–\\d+%, n=4\\)`)).waitFor();
      },
    },
  ];
}
