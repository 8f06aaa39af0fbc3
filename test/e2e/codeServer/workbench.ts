/** Small helpers for driving the VS Code workbench UI with Playwright. */
import type { Locator, Page } from 'playwright-core';

/** Runs a command from the command palette (F1) by its full title, e.g. "DDPO Studio: New Experiment". */
export async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input[type="text"]');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible' });
  await page.keyboard.press('Enter');
}

/** Types into the input box a command opened (showInputBox) and confirms it. */
export async function answerInputBox(page: Page, text: string): Promise<void> {
  const input = page.locator('.quick-input-widget input[type="text"]');
  await input.waitFor({ state: 'visible' });
  await input.fill(text);
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
}

/** A row of the tree in the side bar whose label contains `label`. */
export function treeRow(page: Page, label: string): Locator {
  return page.locator('#workbench\\.parts\\.sidebar .monaco-list-row[role="treeitem"]', { hasText: label }).first();
}

/** A notification toast containing `text`. */
export function toast(page: Page, text: string | RegExp): Locator {
  return page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
}
