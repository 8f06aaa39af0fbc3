import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDdpoConfig } from '../../../src/core/ddpo/config';
import { trainEpoch } from '../../../src/core/ddpo/ppo';
import type { EpochSamples } from '../../../src/core/ddpo/sampling';
import type { Policy, PolicyTrainRequest } from '../../../src/core/ddpo/types';
import { GaussianRng } from '../../../src/core/diffusion/rng';

// Six-step trajectories of 8 samples (latent of 2 numbers); the policy only records which timesteps it was trained on.
const TIMESTEPS = [901, 801, 601, 401, 201, 1];
function samples(): EpochSamples {
  const n = 8;
  return {
    prompts: new Array(n).fill('a cat'), metadata: new Array(n).fill({}), timesteps: TIMESTEPS,
    latents: Array.from({ length: n }, () => new Float32Array(2 * (TIMESTEPS.length + 1))),
    logProbs: Array.from({ length: n }, () => new Array(TIMESTEPS.length).fill(0)), rewards: new Array(n).fill(0), images: [],
  };
}
async function trainedTimesteps(settings: Record<string, unknown>): Promise<Set<number>> {
  const seen = new Set<number>();
  const policy = {
    accumulate: async (r: PolicyTrainRequest) => { r.timesteps.forEach((t) => seen.add(t)); return { loss: 0, approxKl: 0, clipfrac: 0 }; },
    update: async () => ({ gradNorm: 0, applied: true }),
  } as unknown as Policy;
  const { config } = parseDdpoConfig({ sample_num_steps: 6, sample_batch_size: 8, train_batch_size: 2, ...settings });
  await trainEpoch({ config, policy, shuffleRng: new GaussianRng(3), epoch: 0, globalStep: 0 }, samples(), new Array(8).fill(1));
  return seen;
}

test("train_timestep_selection 'earliest' trains only the first, noisiest steps; 'random' (TRL) draws from all", async () => {
  assert.deepEqual([...(await trainedTimesteps({ train_timestep_fraction: 0.34, train_timestep_selection: 'earliest' }))].sort((a, b) => b - a), [901, 801]);
  const random = await trainedTimesteps({ train_timestep_fraction: 0.34 });
  assert.ok([...random].some((t) => t < 801), `random selection should reach later steps, got ${[...random]}`);
});

test('train_timestep_selection accepts only random or earliest', () => {
  assert.equal(parseDdpoConfig({}).config.train_timestep_selection, 'random');
  assert.throws(() => parseDdpoConfig({ train_timestep_selection: 'first' }, 'x/ddpo.json'), /x\/ddpo.json: "train_timestep_selection" must be "random" or "earliest"/);
});
