/** Small helpers for driving the VS Code workbench UI with Playwright. */
import type { FrameLocator, Locator, Page } from 'playwright-core';

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

/** Picks the quick-pick row containing `label` (typed as a filter, then Enter). */
export async function pickQuick(page: Page, label: string): Promise<void> {
  const input = page.locator('.quick-input-widget input[type="text"]');
  await input.waitFor({ state: 'visible' });
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible' });
  // A webview that had focus can take it back from a quick pick that opens right after a command.
  await input.click();
  await input.fill(label);
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: label }).first().waitFor();
  await page.keyboard.press('Enter');
}

/** The content frame of the webview editor that is visible now. */
export function activeWebview(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready:visible').frameLocator('iframe#active-frame');
}

/** Opens the context menu of a tree row and runs its item `label`. */
export async function contextMenu(page: Page, row: Locator, label: string): Promise<void> {
  await row.click({ button: 'right' });
  const item = page.locator('.context-view .action-item', { hasText: label }).first();
  await item.waitFor({ state: 'visible' });
  // Menus act on mouse-up after their own focus handling; hovering focuses the item and Enter runs it.
  await item.hover();
  await page.locator('.context-view .action-item.focused', { hasText: label }).waitFor();
  await page.keyboard.press('Enter');
  await item.waitFor({ state: 'hidden' });
}

/** Types into the input box titled `title` (one step of a multi-step flow) and confirms it. */
export async function answerStep(page: Page, title: string, text: string): Promise<void> {
  await page.locator('.quick-input-widget .quick-input-title', { hasText: title }).waitFor({ state: 'visible' });
  await page.locator('.quick-input-widget input[type="text"]').fill(text);
  await page.keyboard.press('Enter');
}
