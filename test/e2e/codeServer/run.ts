/**
 * End-to-end test in a real VS Code (code-server) in a real browser (Debian's chromium via playwright-core).
 * Usage: node --import tsx test/e2e/codeServer/run.ts [path/to.vsix]   (DDPO_SKIP_E2E=1 skips it)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { startMockHub } from '../../unit/models/mockHub';
import { installVsix, startCodeServer } from './codeServer';
import { CLIP_FOLDER, CLIP_REPO } from './hubBackboneScenario';
import { scenario } from './scenario';
import { ensureCodeServer } from './setup';

const repo = path.resolve(__dirname, '../../..');
const outDir = path.join(repo, '.test-output', 'e2e');
const CHROMIUM = process.env.DDPO_CHROMIUM ?? '/usr/bin/chromium';

async function main(): Promise<number> {
  if (process.env.DDPO_SKIP_E2E === '1') {
    console.log('e2e: SKIPPED because DDPO_SKIP_E2E=1 (unset it to run the code-server end-to-end test)');
    return 0;
  }
  if (!fs.existsSync(CHROMIUM)) {
    console.error(`e2e: no browser at ${CHROMIUM}; install Debian's chromium (apt-get install -y chromium) or set DDPO_CHROMIUM`);
    return 1;
  }
  const started = Date.now();
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const vsix = process.argv[2] ?? packageVsix();
  const cs = ensureCodeServer(path.join(repo, '.e2e'), (l) => console.log(`e2e: ${l}`));
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-e2e-'));
  const dirs = { userDataDir: path.join(run, 'user-data'), extensionsDir: path.join(run, 'extensions'), workspace: path.join(run, 'workspace') };
  fs.mkdirSync(dirs.workspace, { recursive: true });
  const serverLog = path.join(outDir, 'code-server.log');
  installVsix(cs, vsix, dirs.extensionsDir, dirs.userDataDir, serverLog);
  if (!fs.existsSync(path.join(dirs.extensionsDir, 'ddpo-studio.ddpo-studio-0.1.0', 'dist', 'worker.js'))) throw new Error(`the VSIX did not install as ddpo-studio.ddpo-studio-0.1.0 in ${dirs.extensionsDir}`);
  // The studio steps use the embedded tiny model; a checkout without it (media/tiny-model is built by
  // scripts/train-tiny-model.ts) runs them on the random-weight reference fixture instead.
  const fixture = path.resolve(repo, '../shared/fixtures/reference-sd');
  if (!fs.existsSync(path.join(repo, 'media', 'tiny-model', 'model_index.json')) && fs.existsSync(fixture)) {
    console.log(`e2e: media/tiny-model is missing; the embedded model is ${fixture} for this run`);
    process.env.DDPO_STUDIO_EMBEDDED_MODEL = fixture;
  }
  // The Hub steps download from a mock Hub (HF_ENDPOINT) serving the embedded model and the tiny CLIP as two repos, into a HOME of this run, so ~/.cache stays untouched.
  const home = path.join(run, 'home');
  fs.mkdirSync(home);
  const hub = await startMockHub({
    root: process.env.DDPO_STUDIO_EMBEDDED_MODEL ?? path.join(repo, 'media', 'tiny-model'),
    repos: { [CLIP_REPO]: CLIP_FOLDER },
    stall: [{ file: 'unet/model.onnx', ms: 6000 }, { file: 'onnx/vision_model.onnx', ms: 4000 }],
  });
  const server = await startCodeServer(cs, dirs, serverLog, { HOME: home, HF_ENDPOINT: hub.url });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  let passed = 0;
  let failed = 0;
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(20_000);
    const consoleLog = path.join(outDir, 'browser-console.log');
    page.on('console', (m) => fs.appendFileSync(consoleLog, `[${m.type()}] ${m.text()}\n`));
    const steps = scenario(page, dirs.workspace, server.url, { home, scratch: run, hub });
    for (const [i, step] of steps.entries()) {
      const shot = path.join(outDir, `${String(i + 1).padStart(2, '0')}-${slug(step.name)}.png`);
      const t0 = Date.now();
      try {
        await step.run();
        await page.screenshot({ path: shot });
        passed++;
        console.log(`ok ${i + 1} - ${step.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (e) {
        failed++;
        await page.screenshot({ path: shot.replace(/\.png$/, '-FAILED.png') }).catch(() => undefined);
        console.log(`not ok ${i + 1} - ${step.name}\n  ${String((e as Error).stack ?? e).split('\n').slice(0, 6).join('\n  ')}`);
        console.log(`  screenshots and logs: ${path.relative(repo, outDir)}/`);
        break;
      }
    }
    const skipped = steps.length - passed - failed;
    console.log(`e2e: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped (after the failure)` : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${path.relative(repo, outDir)}/`);
  } finally {
    await browser.close();
    server.stop();
    await hub.close();
    fs.rmSync(run, { recursive: true, force: true });
  }
  return failed === 0 ? 0 : 1;
}

function packageVsix(): string {
  execFileSync(process.execPath, [path.join(repo, 'scripts/package.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
  return path.join(repo, `${pkg.name}-linux-x64-${pkg.version}.vsix`);
}

function slug(s: string): string {
  return s.toLowerCase().replace(/"ddpo studio: /g, '').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`e2e: could not run: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
