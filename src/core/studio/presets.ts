/** The New Experiment presets: sampling settings for experiment.json and DDPO settings for ddpo.json. */
import { EMBEDDED_MODEL_ID } from '../experiment/modelDir';
import type { ExperimentSettings } from '../experiment/schema';

/** How a base model is named in the UI. */
export function modelLabel(ref: { id: string }): string {
  return ref.id === EMBEDDED_MODEL_ID ? 'tiny-shapes (embedded)' : ref.id;
}

/** A named bundle of settings. */
export interface ExperimentPreset {
  id: 'cpu-quick' | 'sd15-gpu';
  label: string;
  detail: string;
  settings: Partial<ExperimentSettings>;
  /** Written to ddpo.json (TRL's DDPOConfig keys and this project's). */
  ddpo: Record<string, unknown>;
}

/** The presets offered, quick CPU test first. */
export const PRESETS: readonly ExperimentPreset[] = [
  {
    id: 'cpu-quick',
    label: 'Quick test on CPU',
    detail: 'Small images, 20 steps to rate, 10 while training, 2 short epochs: minutes on a laptop, for trying the whole loop.',
    settings: { steps: 20, guidanceScale: 3, imageSize: 32, seed: 0 },
    ddpo: {
      num_epochs: 2, sample_num_steps: 10, sample_guidance_scale: 3, sample_batch_size: 2, sample_num_batches_per_epoch: 1,
      train_batch_size: 1, train_gradient_accumulation_steps: 2, train_learning_rate: 3e-4, reward: 'learned', eval_seeds: [0], latent_size: 16, train_kl_guard: 100,
    },
  },
  {
    id: 'sd15-gpu',
    label: 'SD 1.5 on GPU',
    detail: '512 px, 50 sampling steps, TRL\'s DDPO defaults: needs a GPU with 12+ GB.',
    settings: { steps: 50, guidanceScale: 5, imageSize: 512, seed: 0 },
    ddpo: {
      num_epochs: 100, sample_num_steps: 50, sample_guidance_scale: 5, sample_batch_size: 1, sample_num_batches_per_epoch: 2,
      train_batch_size: 1, train_gradient_accumulation_steps: 1, reward: 'learned', eval_seeds: [0, 1], latent_size: 64, train_kl_guard: 100,
    },
  },
];

/** The preset with this id; throws naming the known ones. */
export function presetById(id: string): ExperimentPreset {
  const p = PRESETS.find((x) => x.id === id);
  if (!p) throw new Error(`Unknown preset "${id}"; use ${PRESETS.map((x) => x.id).join(' or ')}`);
  return p;
}

/** Splits typed or file text into prompts: one per line, or separated by ";" on a single line. */
export function parsePrompts(text: string): string[] {
  const lines = text.split(/\r?\n/);
  const parts = lines.length === 1 ? lines[0].split(';') : lines;
  return [...new Set(parts.map((p) => p.trim()).filter((p) => p.length > 0 && !p.startsWith('#')))];
}
