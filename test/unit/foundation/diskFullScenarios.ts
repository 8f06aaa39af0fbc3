/**
 * Disk-full scenarios, run by diskFull.test.ts on a tmpfs of their own (see tmpfs.ts): `<mount> reward|generate|pairs|ratings`.
 * Each fills the disk up to a few free pages, runs a product write, and prints one JSON line describing what the
 * disk holds afterwards; the test asserts on it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CliIO } from '../../../src/cli/command';
import { commands } from '../../../src/cli/commands';
import { runCli } from '../../../src/cli/dispatch';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { newExperiment, serializeExperiment, EXPERIMENT_FILE } from '../../../src/core/experiment/schema';
import { decodePng } from '../../../src/core/image/png';
import { loadRewardModel, rewardPaths } from '../../../src/core/reward/model';
import { PreferenceStore, readRatings } from '../../../src/core/reward/store';
import { generatePairsInto } from '../../../src/core/studio/generate';
import { listPairs } from '../../../src/core/studio/pairs';
import { makeSimulatedExperiment } from '../reward/helpers/simulatedExperiment';

const TINY = path.join(__dirname, '../../../media/tiny-model');
const PAGE = 4096;
const [mount, scenario] = process.argv.slice(2);
const FILLER = path.join(mount, 'filler');

// Fills the file system, then gives back `pages` pages: the next writes run out of space after that much.
function fillLeaving(pages: number): void {
  const fd = fs.openSync(FILLER, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  }
  for (let half = chunk.length / 2; half >= 1; half /= 2) {
    try { fs.writeSync(fd, chunk.subarray(0, half)); } catch { /* the last bytes of the last page */ }
  }
  fs.ftruncateSync(fd, Math.max(0, fs.fstatSync(fd).size - pages * PAGE));
  fs.closeSync(fd);
}

/** Every file under `dir` (relative paths), sorted. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

const temps = (dir: string) => filesUnder(dir).filter((f) => /\.tmp-|\.part$|\.partial$/.test(f));

async function cli(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), progress: () => undefined, signal: new AbortController().signal };
  return { code: await runCli(argv, io, commands), out, err };
}

// Reward training with 0, 1, 2 … pages free: the head, then the card, then nothing runs out of space.
async function reward(): Promise<unknown> {
  const dir = path.join(mount, 'exp');
  makeSimulatedExperiment(dir, { pairs: 40, imagesPerPrompt: 8 });
  const first = await cli(['reward', 'train', '--experiment', dir]);
  if (first.code !== 0) throw new Error(first.err.join('\n'));
  const runs = [];
  for (const pages of [0, 1, 2, 3, 4]) {
    const before = { card: fs.readFileSync(rewardPaths(dir).card, 'utf8'), head: fs.readFileSync(loadRewardModel(dir).file).toString('base64') };
    fillLeaving(pages);
    const r = await cli(['reward', 'train', '--experiment', dir, '--seed', String(pages + 1)]);
    fs.rmSync(FILLER);
    const model = loadRewardModel(dir);
    const card = fs.readFileSync(rewardPaths(dir).card, 'utf8');
    runs.push({
      pages, code: r.code, err: r.err.join('\n'),
      unchanged: card === before.card && fs.readFileSync(model.file).toString('base64') === before.head,
      cardNamesHead: path.basename(model.file) === JSON.parse(card).head.file,
      rewardFiles: filesUnder(rewardPaths(dir).dir).filter((f) => !f.startsWith('embeddings')),
      temps: temps(dir),
    });
  }
  return runs;
}

// `ddpo generate` into a folder that already holds two images, with 0 and then 1 image's worth of pages free.
async function generate(): Promise<unknown> {
  const out = path.join(mount, 'images');
  const argv = (count: number) => ['generate', '--model', TINY, '--prompt', 'a red circle', '--steps', '2', '--count', String(count), '--out', out];
  const first = await cli(argv(2));
  if (first.code !== 0) throw new Error(first.err.join('\n'));
  const before = Object.fromEntries(filesUnder(out).map((f) => [f, fs.readFileSync(path.join(out, f)).toString('base64')]));
  const pageCount = Math.ceil(fs.statSync(path.join(out, '0.png')).size / PAGE);
  const runs = [];
  for (const pages of [0, pageCount]) {
    fillLeaving(pages);
    const r = await cli(argv(6));
    fs.rmSync(FILLER);
    const files = filesUnder(out);
    runs.push({
      pages, code: r.code, err: r.err.join('\n'), files,
      earlierUnchanged: Object.entries(before).every(([f, b64]) => fs.readFileSync(path.join(out, f)).toString('base64') === b64),
      allDecode: files.every((f) => { try { decodePng(fs.readFileSync(path.join(out, f))); return true; } catch { return false; } }),
      temps: temps(out),
    });
  }
  return runs;
}

// Rating pairs generated into an experiment with room for nothing, then for one image of a pair.
async function pairs(): Promise<unknown> {
  const dir = path.join(mount, 'exp');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, EXPERIMENT_FILE), serializeExperiment(newExperiment('exp', { prompts: ['a red circle', 'a blue square'], settings: { steps: 2, imageSize: 32 } })));
  const pipe = await StableDiffusionPipeline.load(TINY);
  await generatePairsInto(dir, pipe, 2);
  const pageCount = Math.ceil(fs.statSync(path.join(dir, listPairs(dir)[0].a)).size / PAGE);
  const runs = [];
  for (const pages of [0, pageCount]) {
    fillLeaving(pages);
    let err = '';
    try { await generatePairsInto(dir, pipe, 3); } catch (e) { err = (e as Error).message; }
    fs.rmSync(FILLER);
    const samples = path.join(dir, 'samples');
    runs.push({
      pages, err, pairs: listPairs(dir).length,
      folders: fs.readdirSync(samples).map((n) => fs.readdirSync(path.join(samples, n)).sort().join(',')),
      temps: temps(dir),
    });
  }
  await pipe.release?.();
  return runs;
}

// A rating longer than the room left (a long prompt): refused, and once there is room again the next rating is read
// back whole, not run on from a half line of the refused one.
async function ratings(): Promise<unknown> {
  const dir = path.join(mount, 'exp');
  fs.mkdirSync(dir, { recursive: true });
  const store = PreferenceStore.open(dir);
  const rec = (i: number, prompt = 'a red circle') => ({ pairId: `p${i}`, prompt, left: 'a.png', right: 'b.png', choice: 'left' as const, rater: 'me', sideOrder: 'ab' as const });
  store.append(rec(0));
  store.append(rec(1));
  fillLeaving(0);
  let err = '';
  try { store.append(rec(2, 'x'.repeat(3 * PAGE))); } catch (e) { err = (e as Error).message; }
  fs.rmSync(FILLER);
  store.append(rec(3));
  store.close();
  const log = readRatings(dir);
  return { err, pairIds: log.ratings.map((r) => r.pairId), problems: log.problems.map((p) => p.reason) };
}

const scenarios: Record<string, () => Promise<unknown>> = { reward, generate, pairs, ratings };
void (async () => {
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}; use ${Object.keys(scenarios).join(', ')}`);
  console.log(JSON.stringify(await run()));
})().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
