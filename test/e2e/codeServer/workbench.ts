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

/** Closes every notification toast on screen. */
export async function closeToasts(page: Page): Promise<void> {
  await page.locator('.notifications-toasts .codicon-notifications-clear').evaluateAll((els) => els.forEach((e) => (e as unknown as { click(): void }).click())).catch(() => undefined);
}

/** Polls `ok` until it holds; throws naming `what` after `timeoutMs`. */
export async function until(what: string, ok: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
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

/**
 * Types `folder` into the open dialog titled `title`: code-server's own "simple file dialog", a quick input
 * whose text is a path. With a trailing slash the listing moves there; waits until it shows `expectChild`
 * (else only the ".." row, an empty folder) with the typed text still in place.
 */
export async function typeFolderInDialog(page: Page, title: string, folder: string, expectChild?: string): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('input[type="text"]');
  const rows = widget.locator('.quick-input-list .monaco-list-row');
  await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'visible' });
  const typed = folder + '/';
  const settled = async () => (await input.inputValue()) === typed && (await input.isEnabled()) &&
    (expectChild ? (await rows.filter({ hasText: expectChild }).count()) > 0 : (await rows.count()) === 1 && (await rows.first().innerText()).trim() === '..');
  // The dialog lists folders asynchronously and its own first listing can overwrite early typing, so type
  // again until the listing has shown the typed folder for three polls in a row.
  for (let attempt = 0; attempt < 5; attempt++) {
    if ((await input.inputValue()) !== typed) await input.fill(typed);
    let stable = 0;
    for (let i = 0; i < 25 && stable < 3; i++) {
      await page.waitForTimeout(200);
      stable = (await settled()) ? stable + 1 : 0;
    }
    if (stable >= 3) return;
  }
  throw new Error(`the open dialog "${title}" did not list ${folder}; its text is ${await input.inputValue()}`);
}

/** Accepts the open dialog titled `title` with its OK button (labelled `okLabel`, the dialog's openLabel). */
export async function acceptDialog(page: Page, title: string, okLabel: string): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  await widget.locator('.monaco-button', { hasText: okLabel }).first().click();
  // Not the whole widget: the flow's next question may reuse it at once.
  await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'hidden' });
}
