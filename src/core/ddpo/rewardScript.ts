/**
 * Reward scripts (`"reward": "script:<path>"` in ddpo.json): JavaScript the person's settings ask DDPO to run. It
 * runs only from inside the experiment folder, and only once a gate lets this path with this content run.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { PathEscapeError, resolveInside } from '../fsutil';
import { ddpoLayout } from './layout';

/** A reward script as it is about to run: where it is (inside the experiment) and the sha256 of its content. */
export interface RewardScript {
  file: string;
  sha256: string;
}

/**
 * Lets a reward script run: called with the script before it is imported; throws to refuse. The CLI says what it
 * runs; the studio checks that the person confirmed this path and content.
 */
export type RewardScriptGate = (script: RewardScript) => void | Promise<void>;

/** The `reward` setting's prefix that names a script. */
export const SCRIPT_PREFIX = 'script:';

/** The script a `script:<path>` reward names, resolved inside the experiment (symlinks followed), with its sha256. */
export function resolveRewardScript(spec: string, experimentDir: string): RewardScript {
  const rel = spec.slice(SCRIPT_PREFIX.length);
  let file: string;
  try {
    file = resolveInside(experimentDir, rel);
  } catch (e) {
    if (!(e instanceof PathEscapeError)) throw e;
    throw new Error(`Reward script "${rel}" is not inside the experiment ${experimentDir} (${e.why}); reward scripts run only from inside the experiment folder: copy it there and name it relative to the folder in ddpo.json ("reward": "script:rewards/mine.mjs")`);
  }
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`Cannot read reward script ${file}: ${(e as Error).message}`);
  }
  return { file, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The reward script the experiment's ddpo.json names, or undefined when its reward is not a script (or unreadable). */
export function experimentRewardScript(experimentDir: string): RewardScript | undefined {
  let reward: unknown;
  try {
    reward = (JSON.parse(fs.readFileSync(ddpoLayout(experimentDir).configFile, 'utf8')) as { reward?: unknown })?.reward;
  } catch {
    return undefined; // no ddpo.json, or one the run itself will reject with the reason
  }
  return typeof reward === 'string' && reward.startsWith(SCRIPT_PREFIX) ? resolveRewardScript(reward, experimentDir) : undefined;
}

/** A gate that lets only `confirmed` run: the same file with the same content the person agreed to. */
export function confirmedScriptGate(confirmed: RewardScript | undefined): RewardScriptGate {
  return (s) => {
    if (confirmed?.file === s.file && confirmed.sha256 === s.sha256) return;
    const why = confirmed?.file === s.file ? 'it changed since it was confirmed' : 'it has not been confirmed';
    throw new Error(`Reward script ${s.file} (sha256 ${s.sha256}) will not run: ${why}. Start fine-tuning again from the studio to review and confirm it.`);
  };
}

/** Where confirmations are kept: VS Code's global state, written only by the extension host (never the worker). */
export interface ConfirmationStore {
  get(key: string): unknown;
  update(key: string, value: unknown): PromiseLike<void>;
}

const CONFIRMED_KEY = 'ddpoStudio.confirmedRewardScripts';

/**
 * The experiment's reward script once the person has confirmed it: `ask` (a modal naming the path and sha256) is
 * called unless this path with this content was confirmed before, and a yes is remembered. Resolves to `{}` when
 * ddpo.json names no script and to undefined when the person declines; throws when the script is outside the
 * experiment or unreadable.
 */
export async function confirmRewardScript(store: ConfirmationStore, experimentDir: string, ask: (script: RewardScript, changed: boolean) => PromiseLike<boolean>): Promise<{ script?: RewardScript } | undefined> {
  const script = experimentRewardScript(experimentDir);
  if (!script) return {};
  const raw = store.get(CONFIRMED_KEY);
  const known = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  if (known[script.file] === script.sha256) return { script };
  if (!(await ask(script, typeof known[script.file] === 'string'))) return undefined;
  await store.update(CONFIRMED_KEY, { ...known, [script.file]: script.sha256 });
  return { script };
}
