/** Shared setup of the DDPO loop tests: a toy policy run in a temp experiment folder. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDdpoConfig, type DdpoConfig } from '../../../src/core/ddpo/config';
import { ddpoLayout } from '../../../src/core/ddpo/layout';
import { runDdpo, type DdpoRunResult } from '../../../src/core/ddpo/trainer';
import type { RewardFn } from '../../../src/core/ddpo/types';
import type { ImageRGB } from '../../../src/core/image/rgb';
import { ToyPolicy } from './toyPolicy';

/** Mean pixel value in [0, 1]: a reward the toy can learn within a few epochs. */
export function brightness(img: ImageRGB): number {
  let s = 0;
  for (const v of img.data) s += v;
  return s / img.data.length / 255;
}

/** A small, fast configuration (64 samples per epoch on 8x8 toy images). */
export function toyConfig(overrides: Record<string, unknown> = {}): DdpoConfig {
  return parseDdpoConfig({
    num_epochs: 4, sample_num_steps: 10, sample_batch_size: 4, sample_num_batches_per_epoch: 2, train_batch_size: 2,
    train_learning_rate: 3e-3, eval_seeds: [0, 1], ...overrides,
  }).config;
}

/** A fresh temp experiment folder. */
export function tempExperiment(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ddpo-test-'));
}

/** Runs the loop with a toy policy built from the config's optimizer settings. */
export async function runToy(dir: string, config: DdpoConfig, reward: RewardFn, opts: { resume?: boolean; policy?: ToyPolicy } = {}): Promise<DdpoRunResult & { policy: ToyPolicy }> {
  const policy = opts.policy ?? toyPolicyFor(config);
  const r = await runDdpo({ config, layout: ddpoLayout(dir), policy, reward, prompts: ['a cat', 'a dog'], resume: opts.resume });
  return { ...r, policy };
}

/** The toy policy with AdamW set from the config. */
export function toyPolicyFor(c: DdpoConfig): ToyPolicy {
  return new ToyPolicy(8, { lr: c.train_learning_rate, beta1: c.train_adam_beta1, beta2: c.train_adam_beta2, eps: c.train_adam_epsilon, weightDecay: c.train_adam_weight_decay }, 64);
}

/** The reproducible part of metrics.jsonl (everything but wall-clock fields). */
export function reproducible(file: string): unknown[] {
  return fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => {
    const { seconds: _s, time: _t, ...rest } = JSON.parse(l);
    return rest;
  });
}
