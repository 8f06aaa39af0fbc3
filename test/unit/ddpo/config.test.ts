import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_DDPO_CONFIG, isTrlSetting, numTrainTimesteps, parseDdpoConfig, parseSettingOverrides } from '../../../src/core/ddpo/config';
import { globalAdvantages, PerPromptStatTracker } from '../../../src/core/ddpo/advantages';

test("defaults are TRL's DDPOConfig defaults (LoRA r=4, alpha=4)", () => {
  const d = DEFAULT_DDPO_CONFIG;
  assert.deepEqual([d.num_epochs, d.save_freq, d.num_checkpoint_limit, d.mixed_precision, d.allow_tf32, d.resume_from], [100, 1, 5, 'fp16', true, '']);
  assert.deepEqual([d.sample_num_steps, d.sample_eta, d.sample_guidance_scale, d.sample_batch_size, d.sample_num_batches_per_epoch], [50, 1, 5, 1, 2]);
  assert.deepEqual([d.train_batch_size, d.train_use_8bit_adam, d.train_learning_rate, d.train_adam_beta1, d.train_adam_beta2, d.train_adam_weight_decay, d.train_adam_epsilon], [1, false, 3e-4, 0.9, 0.999, 1e-4, 1e-8]);
  assert.deepEqual([d.train_gradient_accumulation_steps, d.train_max_grad_norm, d.train_num_inner_epochs, d.train_cfg, d.train_adv_clip_max, d.train_clip_range, d.train_timestep_fraction], [1, 1, 1, true, 5, 1e-4, 1]);
  assert.deepEqual([d.per_prompt_stat_tracking, d.per_prompt_stat_tracking_buffer_size, d.per_prompt_stat_tracking_min_count, d.async_reward_computation, d.max_workers, d.negative_prompts], [false, 16, 16, false, 2, '']);
  assert.deepEqual([d.log_with, d.tracker_project_name, d.logdir, d.seed, d.log_image_freq, d.lora_rank, d.lora_alpha], ['', 'trl', 'logs', 0, 1, 4, 4]);
  assert.deepEqual(parseDdpoConfig({}).config, { ...DEFAULT_DDPO_CONFIG });
});

// The fields of TRL's DDPOConfig (trl/trainer/ddpo_config.py).
const TRL_DDPO_FIELDS = ['exp_name', 'run_name', 'seed', 'log_with', 'tracker_kwargs', 'accelerator_kwargs', 'project_kwargs', 'tracker_project_name',
  'logdir', 'num_epochs', 'save_freq', 'num_checkpoint_limit', 'mixed_precision', 'allow_tf32', 'resume_from', 'sample_num_steps', 'sample_eta',
  'sample_guidance_scale', 'sample_batch_size', 'sample_num_batches_per_epoch', 'train_batch_size', 'train_use_8bit_adam', 'train_learning_rate',
  'train_adam_beta1', 'train_adam_beta2', 'train_adam_weight_decay', 'train_adam_epsilon', 'train_gradient_accumulation_steps', 'train_max_grad_norm',
  'train_num_inner_epochs', 'train_cfg', 'train_adv_clip_max', 'train_clip_range', 'train_timestep_fraction', 'per_prompt_stat_tracking',
  'per_prompt_stat_tracking_buffer_size', 'per_prompt_stat_tracking_min_count', 'async_reward_computation', 'max_workers', 'negative_prompts', 'push_to_hub'];

test('every key of TRL\'s DDPOConfig is a setting under TRL\'s name, and only those count as TRL\'s', () => {
  const keys = Object.keys(DEFAULT_DDPO_CONFIG);
  assert.deepEqual(TRL_DDPO_FIELDS.filter((k) => !keys.includes(k)), []);
  assert.deepEqual(keys.filter(isTrlSetting).sort(), [...TRL_DDPO_FIELDS].sort());
  assert.equal(isTrlSetting('log_image_freq'), false, 'log_image_freq is TRL\'s AlignPropConfig, not DDPOConfig');
  assert.deepEqual(parseDdpoConfig({ train_num_inner_epochs: 2 }), { config: { ...DEFAULT_DDPO_CONFIG, train_num_inner_epochs: 2 }, warnings: [] });
});

test('the earlier name num_inner_epochs is still read, with a one-line deprecation warning', () => {
  const old = parseDdpoConfig({ num_inner_epochs: 3 }, 'e/ddpo.json');
  assert.equal(old.config.train_num_inner_epochs, 3);
  assert.ok(!('num_inner_epochs' in old.config));
  assert.deepEqual(old.warnings, ['e/ddpo.json: "num_inner_epochs" is deprecated; it is read as "train_num_inner_epochs" (TRL\'s name), rename it']);
  const both = parseDdpoConfig({ num_inner_epochs: 3, train_num_inner_epochs: 2 });
  assert.equal(both.config.train_num_inner_epochs, 2);
  assert.match(both.warnings.join('\n'), /"num_inner_epochs" is the deprecated name of "train_num_inner_epochs", which is set too; "num_inner_epochs" is ignored/);
  assert.throws(() => parseDdpoConfig({ num_inner_epochs: 0 }), /"train_num_inner_epochs" must be a positive integer/);
});

test('knobs without meaning here are kept but warned about; typos are pointed out', () => {
  const { config, warnings } = parseDdpoConfig({ allow_tf32: false, train_use_8bit_adam: true, learning_rate: 1 }, 'x/ddpo.json');
  assert.equal(config.allow_tf32, false);
  assert.equal(warnings.length, 3);
  assert.match(warnings.join('\n'), /"allow_tf32" has no effect here/);
  assert.match(warnings.join('\n'), /unknown setting "learning_rate".*did you mean "train_learning_rate"/);
});

test('a ddpo.json holding every setting at its default (TRL\'s config written out in full) gives no warnings', () => {
  // the no-effect knobs warn only when set to something else: at TRL's value they change nothing anyone asked for
  assert.deepEqual(parseDdpoConfig(structuredClone({ ...DEFAULT_DDPO_CONFIG })).warnings, []);
});

test('a warning about a top-level setting is given once, not again for the diffusion_dpo overrides', () => {
  const { warnings } = parseDdpoConfig({ allow_tf32: false, diffusion_dpo: { train_learning_rate: 1e-5 } }, 'e/ddpo.json');
  assert.deepEqual(warnings, ['e/ddpo.json: "allow_tf32" has no effect here (a PyTorch/CUDA matmul flag); value ignored']);
  // one the overrides bring is named as theirs
  assert.deepEqual(parseDdpoConfig({ diffusion_dpo: { allow_tf32: false } }, 'e/ddpo.json').warnings,
    ['e/ddpo.json "diffusion_dpo": "allow_tf32" has no effect here (a PyTorch/CUDA matmul flag); value ignored']);
});

test('mixed_precision is TRL\'s: "fp16" by default, "no" accepted quietly, "bf16" warned about, anything else refused', () => {
  assert.equal(parseDdpoConfig({}).config.mixed_precision, 'fp16');
  assert.deepEqual(parseDdpoConfig({ mixed_precision: 'no' }).warnings, []);
  assert.match(parseDdpoConfig({ mixed_precision: 'bf16' }).warnings.join('\n'), /"bf16" is not offered .* training runs in float32/);
  assert.throws(() => parseDdpoConfig({ mixed_precision: 'fp8' }), /"mixed_precision" must be "no", "fp16" or "bf16"/);
});

test('bad values are rejected naming the key and the rule', () => {
  assert.throws(() => parseDdpoConfig({ train_batch_size: 3, sample_batch_size: 4 }, 'e/ddpo.json'), /e\/ddpo.json: "train_batch_size" must divide sample_batch_size \(4\)/);
  assert.throws(() => parseDdpoConfig({ sample_eta: 0 }), /"sample_eta" must be > 0/);
  assert.throws(() => parseDdpoConfig({ num_epochs: '3' }), /"num_epochs" must be a number/);
  assert.throws(() => parseDdpoConfig({ reward: 'clip' }), /"reward" must be/);
  assert.throws(() => parseDdpoConfig({ train_kl_guard: 0.5 }), /"train_kl_guard" must be 0 \(off\) or a factor above 1/);
  assert.equal(numTrainTimesteps(parseDdpoConfig({ sample_num_steps: 50, train_timestep_fraction: 0.3 }).config), 15);
});

test('per-prompt stat tracker uses the batch stats until a prompt has min_count rewards, then its own buffer', () => {
  const t = new PerPromptStatTracker(3, 2);
  const a1 = t.update(['a', 'b'], [1, 3]); // 'a' and 'b' each have 1 < 2: batch mean 2, std 1
  assert.deepEqual(a1.map((x) => +x.toFixed(5)), [-1, 1]);
  const a2 = t.update(['a', 'a'], [2, 4]); // 'a' buffer [1,2,4] (size 3): mean 7/3
  const mean = 7 / 3, std = Math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 3);
  assert.ok(Math.abs(a2[0] - (2 - mean) / (std + 1e-6)) < 1e-12);
  t.update(['a'], [10]); // buffer keeps the last 3: [2, 4, 10]
  assert.deepEqual(t.state().buffers.a, [2, 4, 10]);
  const copy = PerPromptStatTracker.fromState(t.state());
  assert.deepEqual(copy.update(['b', 'a'], [0, 1]), t.update(['b', 'a'], [0, 1]));
});

test('a prompt normalises with its own rewards as soon as it has per_prompt_stat_tracking_min_count of them, not one later', () => {
  // min_count 2: each prompt's two rewards are its own statistics (mean 1 and 20, std 1 and 10), not the batch's (mean 10.5)
  const t = new PerPromptStatTracker(16, 2);
  assert.deepEqual(t.update(['a', 'a', 'b', 'b'], [0, 2, 10, 30]).map((x) => +x.toFixed(5)), [-1, 1, -1, 1]);
});

test('global advantages are (r - mean) / (std + 1e-8) with the population std', () => {
  assert.deepEqual(globalAdvantages([1, 3]).map((x) => +x.toFixed(6)), [-1, 1]);
});

test('--set overrides read numbers, booleans and lists as JSON and anything else as text; a pair without a key is refused by name', () => {
  assert.deepEqual(parseSettingOverrides(['train_learning_rate=0.002', 'use_lora=true', 'eval_seeds=[1,2]', 'reward=script:r.js', 'exp_name=a=b']),
    { train_learning_rate: 0.002, use_lora: true, eval_seeds: [1, 2], reward: 'script:r.js', exp_name: 'a=b' });
  assert.deepEqual(parseSettingOverrides([]), {});
  assert.throws(() => parseSettingOverrides(['=3']), /--set expects key=value \(a ddpo.json key\), got "=3"/);
});
