/** PPO requests over a policy's own samples, for tests that train on what the policy sampled. */
import type { PolicySamples, PolicyTrainRequest } from '../../../src/core/ddpo/types';

/**
 * The PPO request for timestep index `j` of every sample of `s` (sampled from `prompts` with guidance 5, eta 1),
 * advantages +1 for the first and -1 for the second (then alternating), unclipped.
 */
export function transitionRequest(s: PolicySamples, j: number, prompts: string[]): PolicyTrainRequest {
  const D = s.latents[0].length / (s.timesteps.length + 1);
  return {
    prompts, negativePrompt: '', timesteps: prompts.map(() => s.timesteps[j]),
    latents: s.latents.map((l) => l.subarray(j * D, (j + 1) * D)), nextLatents: s.latents.map((l) => l.subarray((j + 1) * D, (j + 2) * D)),
    oldLogProbs: s.logProbs.map((lp) => lp[j]), advantages: prompts.map((_, k) => (k % 2 ? -1 : 1)), numSteps: s.timesteps.length, eta: 1, guidanceScale: 5,
    cfg: true, clipRange: 1e9, lossScale: 1,
  };
}
