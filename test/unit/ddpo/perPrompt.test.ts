import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brightness, runToy, tempExperiment, toyConfig, toyPolicyFor } from './helpers';

test('with per_prompt_stat_tracking, PPO trains each prompt on advantages normalised by that prompt\'s own rewards', async () => {
  // 'a cat' always scores 10 more than 'a dog': normalised together, every cat sample would look good and every dog bad
  const reward = async (imgs: Parameters<typeof brightness>[0][], prompts: string[]) => imgs.map((img, i) => brightness(img) + (prompts[i] === 'a cat' ? 10 : 0));
  const config = toyConfig({ num_epochs: 3, sample_batch_size: 8, per_prompt_stat_tracking: true, per_prompt_stat_tracking_buffer_size: 16, per_prompt_stat_tracking_min_count: 2, eval_seeds: [] });
  const policy = toyPolicyFor(config);
  const byPrompt = new Map<string, number[]>();
  const accumulate = policy.accumulate.bind(policy);
  policy.accumulate = async (req) => {
    req.prompts.forEach((p, k) => byPrompt.set(p, [...(byPrompt.get(p) ?? []), req.advantages[k]]));
    return accumulate(req);
  };
  await runToy(tempExperiment(), config, reward, { policy });
  for (const [prompt, advantages] of byPrompt) {
    const mean = advantages.reduce((s, a) => s + a, 0) / advantages.length;
    assert.ok(Math.abs(mean) < 0.5, `${prompt}: mean advantage ${mean.toFixed(3)} over ${advantages.length} trained items should be near 0`);
    assert.ok(advantages.some((a) => a > 0) && advantages.some((a) => a < 0), `${prompt}: advantages of both signs`);
  }
  assert.deepEqual([...byPrompt.keys()].sort(), ['a cat', 'a dog']);
});
