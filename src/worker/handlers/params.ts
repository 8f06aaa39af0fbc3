/** Checks for untrusted request params; each throws an Error naming the field and what it should be. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXECUTION_PROVIDER_SETTINGS, isTrainingAlgorithm, TRAINING_ALGORITHMS, type CompareSide, type ConfirmedRewardScript, type ExecutionProviderSetting, type TrainingAlgorithm } from '../../protocol';

/** The params as a plain object. */
export function obj(params: unknown): Record<string, unknown> {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new Error('params must be an object');
  return params as Record<string, unknown>;
}

/** A non-empty string field. */
export function str(p: Record<string, unknown>, key: string): string {
  const v = p[key];
  if (typeof v !== 'string' || v.length === 0) throw new Error(`"${key}" must be a non-empty string`);
  return v;
}

/** An optional string field. */
export function optStr(p: Record<string, unknown>, key: string): string | undefined {
  return p[key] === undefined ? undefined : str(p, key);
}

/** An integer field in [min, max]. */
export function int(p: Record<string, unknown>, key: string, min: number, max: number): number {
  const v = p[key];
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw new Error(`"${key}" must be an integer in ${min}..${max}`);
  return v as number;
}

/** An absolute path to an existing folder. */
export function existingDir(p: Record<string, unknown>, key: string): string {
  const v = str(p, key);
  if (!path.isAbsolute(v)) throw new Error(`"${key}" must be an absolute path, got ${v}`);
  if (!fs.existsSync(v) || !fs.statSync(v).isDirectory()) throw new Error(`"${key}": folder ${v} does not exist`);
  return v;
}

/** An experiment folder: absolute, existing, with an experiment.json. */
export function experimentDir(p: Record<string, unknown>): string {
  const dir = existingDir(p, 'experimentDir');
  if (!fs.existsSync(path.join(dir, 'experiment.json'))) throw new Error(`${dir} is not an experiment folder (no experiment.json)`);
  return dir;
}

/** The optional `executionProvider` field: one of the `ddpoStudio.executionProvider` values. */
export function providerSetting(p: Record<string, unknown>): ExecutionProviderSetting | undefined {
  const v = p.executionProvider;
  if (v !== undefined && !EXECUTION_PROVIDER_SETTINGS.includes(v as ExecutionProviderSetting)) throw new Error(`"executionProvider" must be one of ${EXECUTION_PROVIDER_SETTINGS.join(', ')}, got ${JSON.stringify(v)}`);
  return v as ExecutionProviderSetting | undefined;
}

/** The optional `rewardScript` field: the absolute path and sha256 of a reward script the person confirmed. */
export function confirmedScript(p: Record<string, unknown>): ConfirmedRewardScript | undefined {
  if (p.rewardScript === undefined) return undefined;
  const s = obj(p.rewardScript);
  const file = str(s, 'file'), sha256 = str(s, 'sha256');
  if (!path.isAbsolute(file)) throw new Error(`"rewardScript.file" must be an absolute path, got ${file}`);
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('"rewardScript.sha256" must be 64 hex digits');
  return { file, sha256 };
}

/** An optional training-algorithm field. */
export function optAlgorithm(p: Record<string, unknown>, key = 'algorithm'): TrainingAlgorithm | undefined {
  const v = p[key];
  if (v !== undefined && !isTrainingAlgorithm(v)) throw new Error(`"${key}" must be one of ${TRAINING_ALGORITHMS.join(', ')}, got ${JSON.stringify(v)}`);
  return v as TrainingAlgorithm | undefined;
}

/** An optional side of a blind comparison: `{ kind: 'base' }` or `{ kind: 'checkpoint', algorithm, epoch }`. */
export function optCompareSide(p: Record<string, unknown>, key: string): CompareSide | undefined {
  if (p[key] === undefined) return undefined;
  const s = obj(p[key]);
  if (s.kind === 'base') return { kind: 'base' };
  if (s.kind !== 'checkpoint') throw new Error(`"${key}.kind" must be "base" or "checkpoint", got ${JSON.stringify(s.kind)}`);
  const algorithm = optAlgorithm(s);
  if (!algorithm) throw new Error(`"${key}.algorithm" must be one of ${TRAINING_ALGORITHMS.join(', ')}`);
  return { kind: 'checkpoint', algorithm, epoch: int(s, 'epoch', 0, 1e7) };
}
