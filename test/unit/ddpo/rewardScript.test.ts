import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CliIO } from '../../../src/cli/command';
import { trainCommand } from '../../../src/cli/train';
import { confirmRewardScript, confirmedScriptGate, resolveRewardScript, type RewardScript } from '../../../src/core/ddpo/rewardScript';
import { makeReward } from '../../../src/core/ddpo/rewards';
import { newExperiment, serializeExperiment } from '../../../src/core/experiment/schema';
import { runCommand } from '../cli/runCommand';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-reward-script-'));
const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const IMAGE = { width: 1, height: 1, data: new Uint8Array(3) };

function experimentWithScript(body: string, rel = 'rewards/score.mjs'): { dir: string; file: string } {
  const dir = tmp();
  const file = path.join(dir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, body);
  return { dir, file };
}

test('a script inside the experiment runs once the gate, told its path and sha256, lets it', async () => {
  const body = 'export default (images) => images.map(() => 0.5);';
  const { dir, file } = experimentWithScript(body);
  const seen: RewardScript[] = [];
  const reward = await makeReward('script:rewards/score.mjs', dir, (s) => { seen.push(s); });
  assert.deepEqual(seen, [{ file, sha256: sha(body) }]);
  assert.deepEqual(await reward([IMAGE, IMAGE], ['a', 'b'], [{}, {}]), [0.5, 0.5]);
});

test('a script is refused without a gate, and when the gate refuses it is never imported', async () => {
  const { dir } = experimentWithScript('globalThis.ranRewardScript = true; export default (i) => i.map(() => 1);');
  await assert.rejects(makeReward('script:rewards/score.mjs', dir), /was not confirmed/);
  await assert.rejects(makeReward('script:rewards/score.mjs', dir, () => { throw new Error('declined'); }), /declined/);
  assert.equal((globalThis as { ranRewardScript?: boolean }).ranRewardScript, undefined);
});

// A gate may answer later (a modal the person has not clicked yet): the script waits for that answer, and a no is a no.
test('a gate that refuses asynchronously is waited for: the script is never imported', async () => {
  const { dir } = experimentWithScript('globalThis.ranAfterLateNo = true; export default (i) => i.map(() => 1);');
  const late = () => new Promise<void>((_, reject) => setTimeout(() => reject(new Error('declined in the dialog')), 10));
  await assert.rejects(makeReward('script:rewards/score.mjs', dir, late), /declined in the dialog/);
  assert.equal((globalThis as { ranAfterLateNo?: boolean }).ranAfterLateNo, undefined);
});

test('a script outside the experiment is refused by ../, by absolute path and by a symlink leading out', async () => {
  const outside = tmp();
  fs.writeFileSync(path.join(outside, 'evil.mjs'), 'export default (i) => i.map(() => 1);');
  const { dir } = experimentWithScript('export default (i) => i.map(() => 0);');
  fs.symlinkSync(outside, path.join(dir, 'linked'));
  const approve = () => undefined;
  for (const spec of [`script:../${path.basename(outside)}/evil.mjs`, `script:${path.join(outside, 'evil.mjs')}`, 'script:linked/evil.mjs']) {
    await assert.rejects(makeReward(spec, dir, approve), /Reward script .* is not inside the experiment .*run only from inside the experiment folder/, spec);
  }
});

test('an edited script is loaded again, not served from the module cache', async () => {
  const { dir, file } = experimentWithScript('export default (i) => i.map(() => 1);');
  const approve = () => undefined;
  assert.deepEqual(await (await makeReward('script:rewards/score.mjs', dir, approve))([IMAGE], ['a'], [{}]), [1]);
  fs.writeFileSync(file, 'export default (i) => i.map(() => 2);');
  assert.deepEqual(await (await makeReward('script:rewards/score.mjs', dir, approve))([IMAGE], ['a'], [{}]), [2]);
});

test('the studio gate lets only the confirmed path and content run', () => {
  const { dir, file } = experimentWithScript('export default (i) => i.map(() => 1);');
  const script = resolveRewardScript('script:rewards/score.mjs', dir);
  assert.doesNotThrow(() => confirmedScriptGate(script)(script));
  assert.throws(() => confirmedScriptGate(undefined)(script), /will not run: it has not been confirmed/);
  assert.throws(() => confirmedScriptGate({ file, sha256: sha('older content') })(script), /will not run: it changed since it was confirmed/);
  assert.throws(() => confirmedScriptGate({ file: path.join(dir, 'other.mjs'), sha256: script.sha256 })(script), /has not been confirmed/);
});

test('the studio asks once per path and content, remembers a yes, forgets nothing on a no, and asks again after an edit', async () => {
  const { dir, file } = experimentWithScript('export default (i) => i.map(() => 1);');
  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({ reward: 'script:rewards/score.mjs' }));
  const state = new Map<string, unknown>();
  const store = { get: (k: string) => state.get(k), update: async (k: string, v: unknown) => { state.set(k, v); } };
  const asked: { script: RewardScript; changed: boolean }[] = [];
  let answer = false;
  const ask = async (script: RewardScript, changed: boolean) => { asked.push({ script, changed }); return answer; };

  assert.equal(await confirmRewardScript(store, dir, ask), undefined, 'declined');
  answer = true;
  assert.deepEqual(await confirmRewardScript(store, dir, ask), { script: { file, sha256: asked[0].script.sha256 } });
  assert.deepEqual(await confirmRewardScript(store, dir, ask), { script: asked[0].script }, 'remembered: not asked again');
  assert.equal(asked.length, 2);
  fs.writeFileSync(file, 'export default (i) => i.map(() => 9);');
  await confirmRewardScript(store, dir, ask);
  assert.equal(asked.length, 3);
  assert.equal(asked[2].changed, true);
  assert.notEqual(asked[2].script.sha256, asked[0].script.sha256);

  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({ reward: 'jpeg_incompressibility' }));
  assert.deepEqual(await confirmRewardScript(store, dir, ask), {}, 'no script: nothing to confirm');
  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({ reward: 'script:../elsewhere.mjs' }));
  await assert.rejects(confirmRewardScript(store, dir, ask), /not inside the experiment/);
  assert.equal(asked.length, 3);
});

test('ddpo train says which script it runs, with its sha256, before running it', async () => {
  const body = 'throw new Error("the script ran");';
  const { dir, file } = experimentWithScript(body);
  fs.writeFileSync(path.join(dir, 'experiment.json'), serializeExperiment(newExperiment(path.basename(dir), { baseModel: { id: 'embedded:tiny-shapes' }, prompts: ['a red circle'] })));
  fs.writeFileSync(path.join(dir, 'ddpo.json'), JSON.stringify({ reward: 'script:rewards/score.mjs' }));
  const lines: string[] = [];
  const io: CliIO = { out: (l) => lines.push(l), err: (l) => lines.push(`ERR ${l}`), progress: () => undefined, signal: new AbortController().signal };
  assert.equal(await runCommand(trainCommand, ['--experiment', dir], io), 1);
  const ran = lines.findIndex((l) => l === `running reward script ${file} (sha256 ${sha(body)})`);
  assert.ok(ran >= 0, lines.join('\n'));
  assert.match(lines.slice(ran + 1).join('\n'), /ERR Cannot load reward script .*the script ran/);
});
